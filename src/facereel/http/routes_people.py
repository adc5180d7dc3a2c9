"""People: who is enrolled (gallery faces) and what is known about them (metadata fields).

A person exists when the gallery holds faces for them or the metadata table holds their
record; both are edited here. The gallery changes through its port (an atomic conditional
write: concurrent enrolments are all kept), and every host picks the new version up within
the gallery's stated staleness (`gallery_refresh`).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from facereel.core.gallery import Gallery
from facereel.core.types import FloatArray
from facereel.http.errors import ApiError
from facereel.http.services import Services, Svc

router = APIRouter(tags=["people"])
MAX_NAME = 100
Scalar = str | int | float | bool | None


class NewPerson(BaseModel):
    """A person described before (or without) enrolling faces; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Ada Lovelace", "metadata": {"major": "math", "year": "senior"}}]})

    name: str
    metadata: dict[str, Scalar] = Field(default_factory=dict)


class MetadataUpdate(BaseModel):
    """Metadata fields, always inside `metadata` (a bare field is refused, not dropped)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"metadata": {"year": "junior", "nickname": None}}]})

    metadata: dict[str, Scalar]


def check_name(name: str) -> str:
    """A person's name as typed, or 400: printable, at most 100 characters, no slashes."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or "/" in name or "\\" in name or any(
            unicodedata.category(c).startswith("C") for c in name):
        raise ApiError(400, "invalid_name", f"unusable person name {name!r}: 1-{MAX_NAME} "
                       "printable characters, no slashes")
    return name


def _check_fields(metadata: dict[str, Scalar]) -> dict[str, Scalar]:
    for key in metadata:
        if not key.strip() or key == "name" or len(key) > MAX_NAME:
            raise ApiError(400, "bad_metadata", f"unusable metadata field {key!r}")
    return metadata


def _counts(svc: Services) -> dict[str, int]:
    return svc.ports.gallery.load().gallery.counts()


def _person(name: str, faces: int, record: dict[str, Any] | None) -> dict[str, Any]:
    fields = {k: v for k, v in (record or {}).items() if k != "name"}
    return {"name": name, "faces": faces, "metadata": fields}


def _find(svc: Services, name: str) -> dict[str, Any]:
    faces = _counts(svc).get(name, 0)
    record = svc.ports.metadata.get_person(name)
    if not faces and record is None:
        raise ApiError(404, "not_found", f"nobody called {name!r} is enrolled")
    return _person(name, faces, record)


@router.get("/v1/people")
def list_people(svc: Svc) -> list[dict[str, Any]]:
    """Everyone enrolled or described: name, number of gallery faces, metadata fields."""
    counts = _counts(svc)
    records = {r["name"]: r for r in svc.ports.metadata.list_people()}
    names = sorted(set(counts) | set(records), key=str.casefold)
    return [_person(n, counts.get(n, 0), records.get(n)) for n in names]


@router.post("/v1/people", status_code=201)
def create_person(svc: Svc, body: NewPerson) -> dict[str, Any]:
    """Describe a new person (metadata only; add faces with POST /v1/people/{name}/faces)."""
    name = check_name(body.name)
    with svc.gallery_lock:
        if name in _counts(svc) or svc.ports.metadata.get_person(name) is not None:
            raise ApiError(409, "exists", f"{name!r} already exists")
        svc.ports.metadata.put_people([{**_check_fields(body.metadata), "name": name}])
    return _find(svc, name)


@router.get("/v1/people/{name}")
def get_person(svc: Svc, name: str) -> dict[str, Any]:
    return _find(svc, check_name(name))


@router.patch("/v1/people/{name}")
def update_person(svc: Svc, name: str, body: MetadataUpdate) -> dict[str, Any]:
    """Set metadata fields (a field set to null is removed); other fields are kept."""
    name = check_name(name)
    with svc.gallery_lock:
        current = _find(svc, name)["metadata"]
        for key, value in _check_fields(body.metadata).items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        svc.ports.metadata.put_people([{**current, "name": name}])
    return _find(svc, name)


@router.put("/v1/people/{name}")
def replace_person(svc: Svc, name: str, body: MetadataUpdate) -> dict[str, Any]:
    """Replace all metadata fields of a person who exists (404 otherwise: create people with
    POST /v1/people, so a typo in a name never makes a new person)."""
    name = check_name(name)
    fields = {k: v for k, v in _check_fields(body.metadata).items() if v is not None}
    with svc.gallery_lock:
        _find(svc, name)
        svc.ports.metadata.put_people([{**fields, "name": name}])
    return _find(svc, name)


def _forget(svc: Services, names: list[str]) -> list[str]:
    """Remove people's gallery faces and metadata records; the names that existed. The past
    results that named them are republished (from the face memory) without them."""
    faces: list[FloatArray] = []

    def remove(gallery: Gallery) -> set[str]:
        faces[:] = [gallery.vectors_of(name) for name in names]  # (again on a retried write)
        return {name for name in names if gallery.remove(name)}

    with svc.gallery_lock:
        removed, snapshot = svc.ports.gallery.update(remove)
        described = {name for name in names if svc.ports.metadata.delete_person(name)}
    if removed:
        svc.memory.relearn_near(snapshot.gallery, faces)
    return [name for name in names if name in removed | described]


@router.delete("/v1/people/{name}", status_code=204)
def delete_person(svc: Svc, name: str) -> Response:
    """Forget a person: their gallery faces and their metadata record."""
    if not _forget(svc, [check_name(name)]):
        raise ApiError(404, "not_found", f"nobody called {name!r} is enrolled")
    return Response(status_code=204)


@router.delete("/v1/people")
def delete_people(svc: Svc, name: Annotated[list[str], Query()]) -> dict[str, list[str]]:
    """Forget several people at once (`?name=a&name=b`); there is no delete-everyone."""
    names = [check_name(n) for n in name]
    deleted = _forget(svc, names)
    return {"deleted": deleted, "not_found": [n for n in names if n not in deleted]}
