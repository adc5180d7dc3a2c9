"""The face memory: search every video processed so far for a person or a photo's face, and
forget a video's faces or a person. Both need an `admin` key (they reach every face ever
seen) and are written to the audit log. A photo is embedded by the app tier's workers, as
enrolment photos are: the web process never loads a model."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from facereel.errors import FacereelError
from facereel.http.errors import ApiError, validation_message
from facereel.http.routes_enrol import Photo, embed_photos
from facereel.http.routes_people import check_name
from facereel.http.services import Services, Svc, caller
from facereel.http.uploads import check_kind, safe_name
from facereel.memory.search import Match
from facereel.ports.objectstore import key_problem

router = APIRouter(tags=["memory"])
MAX_MATCHES = 10_000  # answered at most, whatever `limit` asks


class SearchBody(BaseModel):
    """What to look for: an enrolled person's name, or a photo (base64 in JSON, or a
    multipart `photo` file with optional `limit` and `threshold` fields)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"person": "Ada Lovelace", "limit": 20}]})

    person: str | None = None
    photo: str | None = Field(None, description="a photo, base64-encoded")
    limit: int | None = Field(None, ge=1, le=MAX_MATCHES)
    threshold: float | None = Field(None, gt=0, le=2)


class ForgetBody(BaseModel):
    """What to forget: a video's key, or a person's name."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"video": "test_00.mp4"}]})

    video: str | None = None
    person: str | None = None


SEARCH_BODIES = {"requestBody": {"content": {
    "application/json": {"schema": SearchBody.model_json_schema(),
                         "example": {"person": "Ada Lovelace", "limit": 20}},
    "multipart/form-data": {"example": {"photo": "ada.jpg", "limit": 20}}}}}


async def _query(request: Request, limit_bytes: int) -> tuple[SearchBody, bytes | None]:
    """The search body (JSON or multipart) and the photo's bytes, if one was sent."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=4) as form:  # spooled files closed
            upload = form.get("photo")
            fields = {k: v for k, v in form.items() if k != "photo" and isinstance(v, str)}
            body = _validated(fields, photo=upload is not None)
            if upload is None:
                return body, None
            if not isinstance(upload, UploadFile):
                raise ApiError(400, "invalid_request", "send the photo as multipart field "
                               "'photo'")
            data = await upload.read(limit_bytes + 1)
            return body, _checked(data, safe_name(upload.filename, "photo.jpg"), limit_bytes)
    try:
        doc = await request.json()
    except ValueError as exc:
        raise ApiError(400, "invalid_request", f"the body is not JSON ({exc})") from exc
    body = _validated(doc)
    if body.photo is None:
        return body, None
    try:
        data = base64.b64decode(body.photo, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_request", "photo: not base64") from exc
    return body, _checked(data, "photo.jpg", limit_bytes)


def _validated(doc: Any, photo: bool = False) -> SearchBody:
    """The body, with exactly one of a person and a photo (`photo`: one came as a file)."""
    try:
        body = SearchBody.model_validate(doc)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", validation_message(exc.errors())) from exc
    if (body.person is None) == (body.photo is None and not photo):
        raise ApiError(422, "invalid_request", "give either 'person' or 'photo'")
    return body


def _checked(data: bytes, name: str, limit_bytes: int) -> bytes:
    if len(data) > limit_bytes:
        raise ApiError(413, "too_large", f"photo larger than {limit_bytes / 2**20:g} MB")
    check_kind(data[:512], name, ("image",))
    return data


async def _matches(svc: Services, body: SearchBody, photo: bytes | None) -> list[Match]:
    memory = svc.memory
    if photo is None:
        name = check_name(str(body.person))
        return await run_in_threadpool(memory.search_person, name, body.threshold, body.limit)
    face = Photo("photo", photo)
    await embed_photos(svc, [face])
    if face.vector is None:
        raise ApiError(422, "no_face", f"no face to search for: {face.message}")
    vector = np.asarray(face.vector, dtype=np.float32)
    return await run_in_threadpool(memory.search_face, vector, body.threshold,
                                   body.limit or MAX_MATCHES)


@router.post("/v1/search", openapi_extra=SEARCH_BODIES)
async def search(svc: Svc, request: Request) -> dict[str, Any]:
    """Every remembered face track within the threshold of an enrolled person (or of the face
    in a photo), best first, one per video and track: from stored faces, no video is decoded.
    An unknown person is 404; nothing found is an empty list."""
    body, photo = await _query(request, int(svc.settings.http.max_image_mb * 2**20))
    target = {"person": body.person} if body.person is not None else {"photo": True}
    try:
        with svc.audit.audited(caller(request), "api", "search", target) as audit:
            matches = await _matches(svc, body, photo)
            audit["matches"] = len(matches)
    except FacereelError as exc:
        raise ApiError(404 if exc.code == "not_found" else 400, exc.code, exc.message) from exc
    return {"matches": [m.to_dict() for m in matches[:MAX_MATCHES]], "count": len(matches)}


def _forget(svc: Services, body: ForgetBody) -> dict[str, Any]:
    if body.video is not None:
        # a bucket's key, or the absolute path `facereel recognize` remembered a file by
        if key_problem(body.video.removeprefix("/")) is not None:
            raise ApiError(400, "invalid_key", f"invalid video key {body.video!r}")
        return svc.memory.forget_video(body.video).to_dict()
    name = check_name(str(body.person))
    with svc.gallery_lock:
        return svc.memory.forget_person(name).to_dict()


@router.post("/v1/forget")
async def forget(svc: Svc, body: ForgetBody, request: Request) -> dict[str, Any]:
    """Forget a video's faces (its memory and stored crops) or a person (every face of
    theirs in the memory, their gallery faces and metadata record). 404 when there is
    nothing of that video or person."""
    if (body.video is None) == (body.person is None):
        raise ApiError(422, "invalid_request", "give either 'video' or 'person'")
    target = {"video": body.video} if body.video is not None else {"person": body.person}
    try:
        with svc.audit.audited(caller(request), "api", "forget", target) as audit:
            done = await run_in_threadpool(_forget, svc, body)
            audit.update(done)
    except FacereelError as exc:
        raise ApiError(404 if exc.code == "not_found" else 409, exc.code, exc.message) from exc
    return {**target, **done}
