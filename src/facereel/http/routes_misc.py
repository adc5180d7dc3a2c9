"""Health, metrics, status, the login session, the web page and the OpenAPI documents."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict

from facereel.app.status import pipeline_status
from facereel.http.auth import (
    COOKIE,
    UNAUTHORIZED_HEADERS,
    Credentials,
    bearer,
    key_is_valid,
)
from facereel.http.errors import ApiError
from facereel.http.services import Svc

public_router = APIRouter()
router = APIRouter()
DOCS_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")


def page() -> str:
    return resources.files("facereel.web").joinpath("index.html").read_text(encoding="utf-8")


@public_router.get("/healthz", tags=["service"])
def healthz() -> dict[str, str]:
    """Liveness: answers without a key."""
    return {"status": "ok"}


class Login(BaseModel):
    """The API key to log in with (or none: the Bearer header's)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"api_key": "my-secret-key"}]})

    api_key: str = ""


@public_router.post("/v1/session", status_code=204, tags=["service"])
def login(svc: Svc, request: Request, body: Login | None = None) -> Response:
    """Exchange an API key (in the body, or as a Bearer header) for a session cookie: the web
    page logs in this way. The cookie holds a random token this server remembers (not the
    key); logging out forgets it."""
    keys = svc.settings.http.api_key_list
    key = body.api_key if body is not None and body.api_key else bearer(
        request.headers.get("authorization", ""))
    if keys and not key_is_valid(key, keys):
        raise ApiError(401, "unauthorized", "unknown API key", UNAUTHORIZED_HEADERS)
    response = Response(status_code=204)
    response.set_cookie(COOKIE, svc.sessions.open(key), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@public_router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(svc: Svc, request: Request) -> HTMLResponse:
    """The web page. Without a key it answers 401 with the same page, which then shows its
    login form (a browser cannot add an Authorization header to a navigation)."""
    credentials = Credentials(bearer(request.headers.get("authorization", "")),
                              request.cookies.get(COOKIE, ""))
    allowed = credentials.via(svc.settings.http.api_key_list, svc.sessions) is not None
    return HTMLResponse(page(), status_code=200 if allowed else 401)


@router.delete("/v1/session", status_code=204, tags=["service"])
def logout(svc: Svc, request: Request) -> Response:
    """Forget this browser's session: its cookie is worthless from now on."""
    svc.sessions.revoke(request.cookies.get(COOKIE, ""))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE)
    return response


@router.get("/metrics", tags=["service"])
def metrics(svc: Svc) -> Response:
    """Prometheus metrics."""
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/v1/status", tags=["service"])
def status(svc: Svc) -> dict[str, Any]:
    """Queue depths (pipeline stages and image requests), video counts and workers."""
    images = svc.images.requests.depth() if svc.images is not None else None
    return pipeline_status(svc.ports, images, svc.workers()).to_dict()


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    """Swagger UI from the `swagger-ui-bundle` package (nothing is fetched from a CDN)."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="facereel API",
                               swagger_js_url="/docs/swagger-ui-bundle.js",
                               swagger_css_url="/docs/swagger-ui.css",
                               swagger_favicon_url="data:,")


@router.get("/docs/{asset}", include_in_schema=False)
def docs_asset(asset: str) -> FileResponse:
    from swagger_ui_bundle import swagger_ui_path

    if asset not in DOCS_ASSETS:
        raise ApiError(404, "not_found", "no such document asset")
    return FileResponse(Path(str(swagger_ui_path)) / asset)
