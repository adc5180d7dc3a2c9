"""Reading an uploaded file: bounded in size (413), checked to be media by content (415), saved
under a safe name. Nothing a client sends decides a path outside the data directory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath

from fastapi import Request, UploadFile

from facereel.core.sniff import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, MediaKind, sniff_bytes
from facereel.http.errors import ApiError
from facereel.ports.objectstore import key_problem

CHUNK = 1 << 20


def multipart_example(**fields: object) -> dict[str, object]:
    """`openapi_extra` giving a multipart route an example body (file fields name files)."""
    return {"requestBody": {"content": {"multipart/form-data": {"example": fields}}}}


def safe_name(filename: str | None, fallback: str = "upload") -> str:
    """The base name of a client's file name, or 400 when nothing safe is left of it."""
    name = PurePosixPath((filename or fallback).replace("\\", "/")).name.strip()
    if not name or key_problem(name) is not None or name.startswith("."):
        raise ApiError(400, "invalid_key", f"unusable file name {filename!r}")
    return name


def check_kind(head: bytes, name: str, allowed: tuple[MediaKind, ...]) -> MediaKind:
    kind, what = sniff_bytes(head)
    if kind is None or kind not in allowed:
        wanted = " or ".join(allowed)
        raise ApiError(415, "unsupported_type", f"{name}: expected {wanted}, got {what}")
    suffixes = IMAGE_EXTENSIONS if kind == "image" else VIDEO_EXTENSIONS
    if Path(name).suffix.lower() not in suffixes:
        raise ApiError(415, "wrong_extension",
                       f"{name}: holds a {what} but its name does not end like one")
    return kind


def refuse_declared_too_large(request: Request, limit: int) -> None:
    """413 before reading anything when the request says it is larger than `limit` (plus
    room for the multipart framing); uploads that do not say are counted as they stream."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise ApiError(413, "too_large", f"upload larger than the {limit / 2**20:g} MB limit")


def too_large(name: str, limit: int) -> ApiError:
    return ApiError(413, "too_large", f"{name}: larger than the {limit / 2**20:g} MB limit")


async def read_limited(upload: UploadFile, limit: int) -> bytes:
    """The whole upload in memory (images), or 413 past `limit` bytes."""
    name = upload.filename or "upload"
    data = bytearray()
    while chunk := await upload.read(CHUNK):
        data += chunk
        if len(data) > limit:
            raise too_large(name, limit)
    if not data:
        raise ApiError(400, "empty_file", f"{name}: file is empty (0 bytes)")
    return bytes(data)


async def spool_limited(upload: UploadFile, limit: int, directory: Path) -> tuple[Path, bytes]:
    """The upload in a temporary file under `directory` (videos) and its first bytes."""
    name = upload.filename or "upload"
    directory.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".upload-")
    size, head = 0, b""
    try:
        with os.fdopen(fd, "wb") as handle:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise too_large(name, limit)
                head = head or chunk[:512]
                handle.write(chunk)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if size == 0:
        Path(temporary).unlink(missing_ok=True)
        raise ApiError(400, "empty_file", f"{name}: file is empty (0 bytes)")
    return Path(temporary), head
