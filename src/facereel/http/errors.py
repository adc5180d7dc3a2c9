"""One error body for every failure: `{"error": {"code": ..., "message": ...}}`."""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facereel.errors import FacereelError

log = logging.getLogger(__name__)

STATUS_CODES = {
    "not_found": 404, "object_not_found": 404, "gallery_not_found": 404,
    "invalid_key": 400, "invalid_request": 400, "bad_metadata": 400,
    "unsupported_type": 415, "not_media": 415, "wrong_extension": 415, "empty_file": 400,
    "too_large": 413, "timeout": 504, "embedder_mismatch": 409,
    "read_only_gallery": 409, "gallery_conflict": 409, "exists": 409,
    "matches_other_person": 409, "strangers_conflict": 409, "invalid_name": 400,
    "storage_full": 507, "storage_denied": 503, "storage_unreachable": 503,
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def validation_message(errors: Sequence[Any]) -> str:
    """`body.major: unknown field; query.limit: ...` from pydantic's error list."""
    problems = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()))
        what = "unknown field" if error.get("type") == "extra_forbidden" else error.get("msg")
        problems.append(f"{where}: {what}")
    return "; ".join(problems) or "invalid request"


def storage_full(exc: BaseException) -> bool:
    """A write that failed because the disk is full: a file (ENOSPC, EDQUOT) or SQLite's own
    report of it. Worth a 507 (try later), not a 500 (a bug)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), exc.status, exc.headers)

    @app.exception_handler(FacereelError)
    async def facereel_error(_: Request, exc: FacereelError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), STATUS_CODES.get(exc.code, 400))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming every field that is wrong, unknown fields included (a body is never
        half-read: a field this route does not take is refused, not dropped)."""
        return JSONResponse(error_body("invalid_request", validation_message(exc.errors())),
                            422)

    async def storage(request: Request, exc: Exception) -> JSONResponse:
        """File and database failures, answered here (not as unexpected errors, which end
        the connection): a full disk is 507, anything else 500."""
        if storage_full(exc):
            log.error("%s %s: storage full: %s", request.method, request.url.path, exc)
            return JSONResponse(error_body("storage_full", "the server's storage is full; "
                                           "nothing was changed, try again later"), 507)
        return await unexpected(request, exc)

    app.add_exception_handler(OSError, storage)
    app.add_exception_handler(sqlite3.Error, storage)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body("internal", "internal error; the server log says more"),
                            500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code,
                            getattr(exc, "headers", None))
