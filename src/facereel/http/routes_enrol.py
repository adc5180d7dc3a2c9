"""Enrolment: a person's gallery faces from photos, or from a stranger a result shows.

Faces are found and embedded by the app tier's workers, never in the web process. A face that
already matches somebody else is not enrolled unless the client says `?force=true`: enrolment
never takes over another person's identity without a word.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from facereel.core.gallery import Gallery
from facereel.core.match import claim_message, claimant
from facereel.http.errors import ApiError
from facereel.http.routes_people import check_name
from facereel.http.routes_videos import published_result, read_face
from facereel.http.services import Services, Svc, caller
from facereel.http.uploads import check_kind, multipart_example, read_limited, safe_name
from facereel.ports.objectstore import key_problem

router = APIRouter(tags=["people"])
MAX_PHOTOS = 20
Force = Annotated[bool, Query(description="enrol even a face that matches another person")]


class StrangerRef(BaseModel):
    """A stranger of a published result: the video's key and the stranger's `track_id`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"video": "test_00.mp4", "track_id": "3"}]})

    video: str
    track_id: str


@dataclass(slots=True)
class Photo:
    """One photo of an enrolment and what became of it."""

    image: str
    data: bytes = b""
    vector: list[float] | None = None
    message: str = ""
    matches: str | None = None  # the other person this face already matches

    def outcome(self, enrolled: bool) -> dict[str, Any]:
        answer: dict[str, Any] = {"image": self.image, "ok": enrolled, "message": self.message}
        if self.matches is not None:
            answer["matches"] = self.matches
        return answer


async def embed_photos(svc: Services, photos: list[Photo]) -> None:
    """Each readable photo's face embedded by the app tier, all at once."""
    if svc.images is None:
        raise ApiError(503, "unavailable", "the image tier is not running")
    timeout = svc.settings.image_tier.image_timeout
    images = svc.images
    todo = [photo for photo in photos if photo.data]
    answers = await asyncio.gather(*(images.embed_async(photo.image, photo.data, timeout)
                                     for photo in todo))
    for photo, answer in zip(todo, answers, strict=True):
        photo.vector = answer.get("vector")
        photo.message = answer.get("note") or answer.get("error", {}).get("message", "")


def _enrol(svc: Services, name: str, photos: list[Photo], force: bool) -> dict[str, Any]:
    """Add the embedded faces to the gallery (one conditional write), leaving out faces that
    match someone else unless forced; the per-photo outcomes, or an error when none is left."""
    current = svc.ports.gallery.load().gallery
    policy = svc.settings.recognition.match_policy()
    staged = Gallery(current.embedder, current.dim)
    enrolled = []
    for photo in photos:
        if photo.vector is None:
            continue
        vector = np.asarray([photo.vector], dtype=np.float32)
        claim = None if force else claimant(current, name, vector[0], policy)
        if claim is not None:
            photo.matches = claim.person
            photo.message = f"{claim_message(claim)}; not enrolled (add ?force=true to enrol)"
            continue
        staged.add(name, vector)
        enrolled.append(photo)
    outcomes = [photo.outcome(photo in enrolled) for photo in photos]
    if not enrolled:
        reasons = "; ".join(f"{o['image']}: {o['message']}" for o in outcomes)
        status, code = (409, "matches_other_person") if any(p.matches for p in photos) \
            else (422, "no_face")
        raise ApiError(status, code, f"nothing enrolled for {name!r}: {reasons}")
    with svc.gallery_lock:
        svc.ports.gallery.update(lambda gallery: gallery.merge(staged))
    return {"person": name, "enrolled": len(enrolled), "outcomes": outcomes}


async def _audited_enrol(svc: Services, request: Request, name: str, photos: list[Photo],
                         force: bool) -> dict[str, Any]:
    """`_enrol`, written to the audit log (who enrolled whom, from what, and the outcome)."""
    target = {"person": name, "photos": [p.image for p in photos], "force": force}
    with svc.audit.audited(caller(request), "api", "enrol", target) as audit:
        answer = await run_in_threadpool(_enrol, svc, name, photos, force)
        audit["enrolled"] = answer["enrolled"]
        # the past results the new faces change, republished from the face memory
        learned = await run_in_threadpool(svc.memory.relearn, None, [name])
        answer["republished"] = learned.republished
        audit["republished"] = answer["republished"]
    return answer


@router.post("/v1/people/{name}/faces",
             openapi_extra=multipart_example(files=["ada-1.jpg", "ada-2.jpg"]))
async def add_faces(svc: Svc, request: Request, name: str,
                    files: Annotated[list[UploadFile], File()],
                    force: Force = False) -> dict[str, Any]:
    """Enrol a person from photos (one face each; the largest when several): the person is
    created when new. Answers per photo whether it was enrolled, and why not (not an image,
    no face, a face that already matches somebody else); 422 when nothing was enrolled."""
    name = check_name(name)
    if not files or len(files) > MAX_PHOTOS:
        raise ApiError(400, "invalid_request", f"send 1-{MAX_PHOTOS} photos as field 'files'")
    limit = int(svc.settings.http.max_image_mb * 2**20)
    photos = []
    for upload in files:
        photo = Photo(safe_name(upload.filename, "photo.jpg"))
        data = await read_limited(upload, limit)
        try:
            check_kind(data[:512], photo.image, ("image",))
            photo.data = data
        except ApiError as refused:
            photo.message = refused.message
        photos.append(photo)
    await embed_photos(svc, photos)
    return await _audited_enrol(svc, request, name, photos, force)


def _stranger_face(svc: Services, ref: StrangerRef) -> Photo:
    """The face crop of a stranger in a published result, or 404 saying what is missing."""
    if key_problem(ref.video) is not None:
        raise ApiError(400, "invalid_key", f"invalid video key {ref.video!r}")
    result = published_result(svc, ref.video)
    if result is None:
        raise ApiError(404, "not_found", f"no result for {ref.video!r} (yet)")
    found = [s for s in result.get("strangers") or [] if str(s.get("track_id")) == ref.track_id]
    if not found:
        raise ApiError(404, "not_found", f"the result of {ref.video!r} has no stranger "
                       f"{ref.track_id!r}")
    if not found[0].get("face"):
        raise ApiError(409, "no_face_crop", f"the result of {ref.video!r} kept no face crop "
                       f"of stranger {ref.track_id!r}; enrol them from a photo instead")
    return Photo(f"{ref.video}#{ref.track_id}", read_face(svc, str(found[0]["face"])))


@router.post("/v1/people/{name}/strangers")
async def add_stranger(svc: Svc, request: Request, name: str, body: StrangerRef,
                       force: Force = False) -> dict[str, Any]:
    """Enrol a stranger a result shows (its face crop) as `name`: the person is created when
    new. Answers like POST /v1/people/{name}/faces."""
    name = check_name(name)
    photo = await run_in_threadpool(_stranger_face, svc, body)
    await embed_photos(svc, [photo])
    return await _audited_enrol(svc, request, name, [photo], force)
