"""The image web tier's front: `/v1/images` (and `POST /`, as the coursework's workload
generator posts `inputFile` to the server's root URL). Answers `text/plain`
`<filename>:<name>` as the original web tier did, or the result document as JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from facereel.http.errors import STATUS_CODES, ApiError
from facereel.http.services import Services, Svc
from facereel.http.uploads import (
    check_kind,
    multipart_example,
    read_limited,
    refuse_declared_too_large,
    safe_name,
)
from facereel.imagetier.client import ImageTierTimeoutError

router = APIRouter(tags=["images"])
# an image the app tier could not use: the client's fault (413, 422) or ours (500)
IMAGE_ERROR_STATUS = {"too_large": 413, "corrupt_image": 422, "not_media": 415,
                      "internal": 500}


async def _answer(request: Request, upload: UploadFile | None, svc: Services) -> Response:
    if upload is None:
        raise ApiError(400, "invalid_request", "send the image as multipart field 'inputFile'")
    if svc.images is None:
        raise ApiError(503, "unavailable", "the image tier is not running")
    limit = int(svc.settings.http.max_image_mb * 2**20)
    refuse_declared_too_large(request, limit)
    name = safe_name(upload.filename, "image.jpg")
    data = await read_limited(upload, limit)
    check_kind(data[:512], name, ("image",))
    try:
        answer = await svc.images.ask_async(name, data, svc.settings.image_tier.image_timeout)
    except ImageTierTimeoutError:
        svc.metrics.images.labels("timeout").inc()
        svc.metrics.failures.labels("image_timeout").inc()
        raise
    outcome = str(answer.result.get("status", "ok"))
    svc.metrics.images.labels(outcome).inc()
    svc.metrics.image_latency.observe(answer.seconds)
    wants_json = "application/json" in request.headers.get("accept", "")
    if outcome == "error":  # refused or failed: never the "nobody matched" answer
        svc.metrics.failures.labels("image_error").inc()
        error = answer.result.get("error") or {}
        code, message = str(error.get("code", "error")), str(error.get("message", ""))
        status = IMAGE_ERROR_STATUS.get(code, STATUS_CODES.get(code, 422))
        if wants_json:
            return JSONResponse(answer.result, status)
        return PlainTextResponse(f"{answer.filename}: error ({code}): {message}", status)
    if wants_json:
        return JSONResponse(answer.result)
    return PlainTextResponse(f"{answer.filename}:{answer.name}")


@router.post("/v1/images", response_class=PlainTextResponse,
             openapi_extra=multipart_example(inputFile="test_00.jpg"))
async def images(svc: Svc, request: Request,
                 inputFile: Annotated[UploadFile | None, File()] = None,  # noqa: N803
                 file: Annotated[UploadFile | None, File()] = None) -> Response:
    """Who is in an image: `<filename>:<name>` (`unknown` when nobody enrolled matches), or
    the JSON result document with `Accept: application/json`."""
    return await _answer(request, inputFile or file, svc)


@router.post("/", response_class=PlainTextResponse, include_in_schema=False)
async def root(svc: Svc, request: Request,
               inputFile: Annotated[UploadFile | None, File()] = None,  # noqa: N803
               file: Annotated[UploadFile | None, File()] = None) -> Response:
    return await _answer(request, inputFile or file, svc)
