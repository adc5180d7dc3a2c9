"""Strangers grouped, and people renamed or merged: the groups of faces matched to nobody
across every remembered video (listing needs the scope search needs: it reaches every
stranger's face), naming a group (its faces enrolled as a person, past results republished),
merging and splitting groups; renaming a person and merging two people. Changes are written
to the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from facereel.http.routes_people import check_name
from facereel.http.services import Services, Svc, caller

router = APIRouter(tags=["strangers"])
MAX_ITEMS = 1000


class GroupName(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Ada Lovelace"}]})

    name: str
    force: bool = False


class GroupIds(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"groups": ["3f1c2a9b8d7e", "a0b1c2d3e4f5"]}]})

    groups: list[str] = Field(min_length=2, max_length=MAX_ITEMS)


class TrackOf(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video: str
    track_id: str


class Tracks(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"tracks": [{"video": "test_00.mp4", "track_id": "3"}]}]})

    tracks: list[TrackOf] = Field(min_length=1, max_length=MAX_ITEMS)


class NewName(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Ada King"}]})

    name: str


class MergeInto(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"into": "Ada Lovelace"}]})

    into: str


@router.get("/v1/strangers")
async def list_strangers(svc: Svc) -> dict[str, Any]:
    """Groups of faces nobody is enrolled as, largest first (regrouped first when the
    memory changed): `group_id`, `faces`, `tracks`, each track's `video`/`etag`/`track_id`,
    sample crops (`GET /v1/faces/{key}`); `ungrouped` counts tracks in no group."""
    listing: dict[str, Any] = await run_in_threadpool(svc.memory.strangers.listing)
    return listing


async def _audited(svc: Services, request: Request, action: str, target: dict[str, Any],
                   work: Any, summary: Any) -> Any:
    with svc.audit.audited(caller(request), "api", action, target) as audit:
        done = await run_in_threadpool(work)
        audit.update(summary(done))
    return done


@router.post("/v1/strangers/merge")
async def merge_strangers(svc: Svc, request: Request, body: GroupIds) -> dict[str, Any]:
    """Merge groups that are one person into the first one given: the merged group."""
    done: dict[str, Any] = await _audited(
        svc, request, "merge_strangers", {"groups": body.groups},
        lambda: svc.memory.strangers.merge(body.groups),
        lambda g: {"group_id": g["group_id"], "tracks": g["tracks"]})
    return done


@router.post("/v1/strangers/{group_id}/name")
async def name_strangers(svc: Svc, request: Request, group_id: str,
                         body: GroupName) -> dict[str, Any]:
    """Enrol a group's faces as a person (faces matching somebody else are left out unless
    `force`) and republish the past results that change: `person`, `enrolled`,
    `republished`."""
    name = check_name(body.name)

    def work() -> dict[str, Any]:
        with svc.gallery_lock:
            return svc.memory.name_group(group_id, name, body.force).to_dict()

    done: dict[str, Any] = await _audited(svc, request, "name_strangers",
                                          {"group": group_id, "person": name}, work,
                                          lambda d: d)
    return done


@router.post("/v1/strangers/{group_id}/split")
async def split_strangers(svc: Svc, request: Request, group_id: str,
                          body: Tracks) -> dict[str, str]:
    """Move some tracks of a wrong group to a new group: its `group_id`."""
    refs = [(t.video, t.track_id) for t in body.tracks]
    new: str = await _audited(svc, request, "split_strangers",
                              {"group": group_id, "tracks": len(refs)},
                              lambda: svc.memory.strangers.split(group_id, refs),
                              lambda g: {"group_id": g})
    return {"group_id": new}


def _relabel(svc: Services, old: str, new: str, merge: bool) -> dict[str, Any]:
    with svc.gallery_lock:
        return svc.memory.relabel(old, new, merge).to_dict()


@router.post("/v1/people/{name}/rename")
async def rename_person(svc: Svc, request: Request, name: str,
                        body: NewName) -> dict[str, Any]:
    """Rename a person (gallery faces and metadata record; 409 when the new name exists)
    and republish the past results that change: `person`, `faces`, `metadata`,
    `republished`."""
    old, new = check_name(name), check_name(body.name)
    done: dict[str, Any] = await _audited(svc, request, "rename", {"person": old, "into": new},
                                          lambda: _relabel(svc, old, new, False), lambda d: d)
    return done


@router.post("/v1/people/{name}/merge")
async def merge_person(svc: Svc, request: Request, name: str,
                       body: MergeInto) -> dict[str, Any]:
    """Merge a person into another (`into`, who keeps their metadata fields) and republish
    the past results that change; answers like rename."""
    old, new = check_name(name), check_name(body.into)
    done: dict[str, Any] = await _audited(svc, request, "merge", {"person": old, "into": new},
                                          lambda: _relabel(svc, old, new, True), lambda d: d)
    return done
