"""Browsing: videos and their published results, filtered and a page at a time, and the
pipeline's dead letters (listed with their errors, sent back for another try)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from facereel.app import dead_letters as dead
from facereel.app.browse import (
    DEFAULT_LIMIT,
    MAX_CURSOR,
    MAX_LIMIT,
    MAX_PERSON,
    Filters,
    browse,
)
from facereel.http.services import Svc

router = APIRouter(tags=["browse"])
VideoStatus = Literal["queued", "processing", "recognizing", "done", "error", "dead"]
ResultStatus = Literal["done", "error"]
StageName = Literal["split", "analyze", "recognize", "publish", "remember"]
MAX_KEY = 1024


class ErrorInfo(BaseModel):
    code: str
    message: str


class VideoItem(BaseModel):
    """A video's row in the metadata table."""

    key: str = Field(description="the video's key in the input bucket")
    etag: str = Field(description="which content of the key the row describes")
    status: str = Field(description="queued, processing, recognizing, done, error or dead")
    updated: str = Field(description="when the status last changed: ISO-8601, UTC, "
                         "e.g. 2025-01-31T08:00:00.250Z")
    people: list[str] = Field(description="who the published result names, most prominent "
                              "first")
    error: ErrorInfo | None
    result_key: str | None = Field(description="the result document in the output bucket")
    result: str | None = Field(description="the result document's route")


class VideoList(BaseModel):
    videos: list[VideoItem]
    next: str | None = Field(description="cursor of the next page; null: this is the last")


class ResultList(BaseModel):
    results: list[VideoItem]
    next: str | None = Field(description="cursor of the next page; null: this is the last")


class DeadLetterItem(BaseModel):
    queue: str = Field(description="the stage whose queue gave the message up")
    id: str
    key: str
    etag: str
    attempts: int = Field(description="deliveries before it was given up")
    error: ErrorInfo | None
    body: dict[str, Any] = Field(description="the stage's message, as it is sent back")


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetterItem]


class RedriveRequest(BaseModel):
    """Which dead letters to send back: of one stage's queue, of one video (each optional;
    `{}` sends every dead letter back)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"queue": "publish", "key": "lectures/test_00.mp4"}, {}]})

    queue: StageName | None = None
    key: str | None = Field(None, min_length=1, max_length=MAX_KEY)


class Redriven(BaseModel):
    redriven: list[DeadLetterItem]


@dataclass(frozen=True, slots=True)
class PageParams:
    person: str | None
    since: datetime | None
    until: datetime | None
    limit: int
    cursor: str | None

    def filters(self, statuses: list[str] | None) -> Filters:
        return Filters(tuple(statuses or ()), self.person, self.since, self.until)


def page_params(
    person: Annotated[str | None, Query(
        min_length=1, max_length=MAX_PERSON, description="only videos whose published result "
        "names this person")] = None,
    since: Annotated[datetime | None, Query(
        description="updated at or after this time (ISO-8601; UTC when no zone is given)")
    ] = None,
    until: Annotated[datetime | None, Query(description="updated at or before this time")
                     ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")
                     ] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(
        min_length=1, max_length=MAX_CURSOR, description="a page's `next`: the page after it")
    ] = None,
) -> PageParams:
    return PageParams(person, since, until, limit, cursor)


Page = Annotated[PageParams, Depends(page_params)]


@router.get("/v1/videos", response_model=VideoList)
def list_videos(svc: Svc, page: Page, status: Annotated[list[VideoStatus] | None, Query(
        description="any of these statuses (repeat the parameter for several)")] = None,
                ) -> dict[str, Any]:
    """Videos (their metadata rows), most recently updated first, a page at a time: follow
    `next` (as `?cursor=`) until it is null. Rows written meanwhile never shift a page."""
    listing = browse(svc.ports.metadata, "videos", page.filters(list(status or ())),
                     page.limit, page.cursor)
    return {"videos": listing.items, "next": listing.next}


@router.get("/v1/results", response_model=ResultList)
def list_results(svc: Svc, page: Page, status: Annotated[list[ResultStatus] | None, Query(
        description="done (a result naming who was seen, or nobody) or error")] = None,
                 ) -> dict[str, Any]:
    """Published results (videos whose status is done or error), most recent first; each
    names the route of its result document. Filters and paging as `GET /v1/videos`."""
    listing = browse(svc.ports.metadata, "results", page.filters(list(status or ())),
                     page.limit, page.cursor)
    return {"results": listing.items, "next": listing.next}


router.add_api_route("/v1/results/", list_results, methods=["GET"], include_in_schema=False,
                     response_model=ResultList)  # not the result of a video named ""


@router.get("/v1/dead-letters", response_model=DeadLetterList)
def list_dead_letters(
    svc: Svc,
    queue: Annotated[StageName | None, Query(description="one stage's queue")] = None,
    key: Annotated[str | None, Query(min_length=1, max_length=MAX_KEY,
                                     description="one video's")] = None,
    limit: Annotated[int, Query(ge=1, le=dead.MAX_LISTED, description="per queue")] = 100,
) -> dict[str, Any]:
    """Messages the pipeline gave up after repeated failures, queue by queue, with the
    error of their last try."""
    found = dead.dead_letters(svc.ports, dead.Selection(queue, key), limit)
    return {"dead_letters": [message.to_dict() for message in found]}


@router.post("/v1/dead-letters/redrive", response_model=Redriven)
def redrive_dead_letters(svc: Svc, body: RedriveRequest) -> dict[str, Any]:
    """Send dead letters back to their queues for another try (each gets its full number of
    attempts again); their videos are `queued` again."""
    sent = dead.redrive(svc.ports, dead.Selection(body.queue, body.key))
    return {"redriven": [message.to_dict() for message in sent]}
