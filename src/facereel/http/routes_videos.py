"""Videos through the pipeline: on-demand recognition of a bucket object, uploads, jobs,
results, and the face crops results point to."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from facereel.app.browse import MAX_CURSOR, decode_cursor, encode_cursor
from facereel.app.jobs import Job
from facereel.http.errors import ApiError
from facereel.http.services import Services, Svc
from facereel.http.uploads import (
    check_kind,
    multipart_example,
    refuse_declared_too_large,
    safe_name,
    spool_limited,
)
from facereel.pipeline.parts import read_member, split_face_key
from facereel.pipeline.publishing import legacy_result_key, result_key
from facereel.ports.objectstore import ObjectNotFoundError, key_problem

router = APIRouter(tags=["videos"])
# face crops of results published before the shots travelled inside one part object
OLD_FACE_KEY = re.compile(r"^[^\s]+/track\d{3}-shot\d{2}\.jpg$")
POLL_S = 0.2


class RecognizeRequest(BaseModel):
    """The original on-demand function's body: a video already in the input bucket."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"bucket": "input", "key": "test_00.mp4"}]})

    bucket: str
    key: str


def _submit(svc: Services, key: str) -> Job:
    info = svc.ports.input.head(key)
    if info is None:
        raise ApiError(404, "object_not_found", f"no object {key!r} in the input bucket")
    if info.problem:
        raise ApiError(422, "not_regular_file", f"{key!r} is {info.problem}")
    record = svc.ports.metadata.get_video(key)
    # the same content already queued, in progress or answered is followed, not redone
    if record is None or record.etag != info.etag or record.status == "dead":
        svc.submitter.submit(key, info.etag, info.size)
    return svc.jobs.create(key, info.etag)


def published_result(svc: Services, key: str) -> dict[str, Any] | None:
    """The published result of `key`: `<key>.json`, or a result published before documents
    were named after the whole key (`<stem>.json`) when it is this key's."""
    for candidate in (result_key(key), legacy_result_key(key)):
        try:
            data, _ = svc.ports.output.fetch(candidate)
        except ObjectNotFoundError:
            continue
        doc: dict[str, Any] = json.loads(data)
        if candidate == result_key(key) or doc.get("video") == key:
            return doc
    return None


@router.post("/v1/recognize")
async def recognize(svc: Svc, body: RecognizeRequest,
                    run_async: Annotated[bool, Query(alias="async")] = False) -> JSONResponse:
    """Who is in a video already in the input bucket (the original on-demand function's
    contract); `?async=true` answers at once with a job id instead."""
    if body.bucket != svc.ports.input.bucket:
        raise ApiError(404, "unknown_bucket",
                       f"unknown bucket {body.bucket!r}: videos are read from the input bucket "
                       f"{svc.ports.input.bucket!r}")
    if (problem := key_problem(body.key)) is not None:
        raise ApiError(400, "invalid_key", f"invalid object key {body.key!r}: {problem}")
    job = await run_in_threadpool(_submit, svc, body.key)
    if run_async:
        return JSONResponse(job.to_dict(), 202)
    deadline = time.monotonic() + svc.settings.http.recognize_timeout
    while time.monotonic() < deadline:
        current = await run_in_threadpool(svc.jobs.get, job.id)
        if current is not None and current.state in ("done", "failed"):
            result = await run_in_threadpool(published_result, svc, body.key)
            if result is not None:
                return JSONResponse(result)
            raise ApiError(500, "no_result", current.error["message"] if current.error
                           else f"{body.key}: finished without a result")
        await asyncio.sleep(POLL_S)
    raise ApiError(504, "timeout", f"{body.key} is still being processed; ask again with "
                   f"?async=true and follow job {job.id}")


@router.post("/v1/videos", status_code=202,
             openapi_extra=multipart_example(file="test_00.mp4", key="lectures/test_00.mp4"))
async def upload_video(svc: Svc, request: Request,
                       file: Annotated[UploadFile | None, File()] = None,
                       inputFile: Annotated[UploadFile | None, File()] = None,  # noqa: N803
                       key: Annotated[str | None, Form()] = None) -> dict[str, Any]:
    """Upload a video (or image) into the input bucket; answers with the job following it."""
    upload = file or inputFile
    if upload is None:
        raise ApiError(400, "invalid_request", "send the video as multipart field 'file'")
    limit = int(svc.settings.http.max_video_mb * 2**20)
    refuse_declared_too_large(request, limit)
    if key is not None and (problem := key_problem(key)) is not None:
        raise ApiError(400, "invalid_key", f"invalid object key {key!r}: {problem}")
    name = key or safe_name(upload.filename)
    path, head = await spool_limited(upload, limit, svc.settings.data_dir / "uploads")
    try:
        check_kind(head, name, ("video", "image"))
        await run_in_threadpool(svc.ports.input.put_file, name, path)
    finally:
        path.unlink(missing_ok=True)
    job = await run_in_threadpool(_submit, svc, name)
    return job.to_dict()


@router.get("/v1/jobs")
def list_jobs(
    svc: Svc, request: Request, response: Response,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    status: Annotated[list[Literal["queued", "running", "done", "failed"]] | None, Query(
        description="any of these states (repeat the parameter for several)")] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=MAX_CURSOR,
                                        description="the next page's cursor")] = None,
) -> list[dict[str, Any]]:
    """Jobs, newest first. When more follow, the `Link` header names the next page
    (`<...&cursor=...>; rel="next"`); the body stays a plain array, as it always was."""
    after = decode_cursor("jobs", cursor) if cursor else None
    page = svc.jobs.page(limit, tuple(status or ()), after)
    if page.next is not None:
        following = request.url.include_query_params(
            cursor=encode_cursor("jobs", *page.next))
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return [job.to_dict() for job in page.jobs]


@router.get("/v1/jobs/{job_id}")
def get_job(svc: Svc, job_id: str) -> dict[str, Any]:
    """queued / running / done / failed, with progress; the result document once done."""
    job = svc.jobs.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id}")
    doc = job.to_dict()
    if job.state in ("done", "failed"):
        doc["result"] = published_result(svc, job.key)
    return doc


@router.get("/v1/results/{video:path}")
def get_result(svc: Svc, video: str) -> dict[str, Any]:
    """The result document of a video (by its key in the input bucket)."""
    if key_problem(video) is not None:
        raise ApiError(400, "invalid_key", f"invalid video key {video!r}")
    result = published_result(svc, video)
    if result is None:
        raise ApiError(404, "not_found", f"no result for {video!r} (yet)")
    return result


def read_face(svc: Services, key: str) -> bytes:
    """The JPEG of a face crop a result points to (a shot inside its video's part object),
    or 404."""
    inside = split_face_key(key)
    if key_problem(key) is not None or (inside is None and not OLD_FACE_KEY.match(key)):
        raise ApiError(404, "not_found", "no such face crop")
    try:
        data, _ = svc.ports.stage1.fetch(inside[0] if inside else key)
    except ObjectNotFoundError:
        raise ApiError(404, "not_found", "no such face crop") from None
    return read_member(data, inside[1]) if inside else data


@router.get("/v1/faces/{key:path}")
def get_face(svc: Svc, key: str) -> Response:
    """A face crop a result points to (JPEG)."""
    return Response(read_face(svc, key), media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=86400"})
