"""The FastAPI application: routes, auth, error bodies, request metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, Request, Response

from facereel.http import errors
from facereel.http.auth import COOKIE, UNAUTHORIZED_HEADERS, Credentials, bearer, route_scope
from facereel.http.errors import ApiError
from facereel.http.guard import DoorPolicy, RequestGuard
from facereel.http.routes_browse import router as browse_router
from facereel.http.routes_enrol import router as enrol_router
from facereel.http.routes_images import router as images_router
from facereel.http.routes_memory import router as memory_router
from facereel.http.routes_misc import public_router
from facereel.http.routes_misc import router as misc_router
from facereel.http.routes_people import router as people_router
from facereel.http.routes_strangers import router as strangers_router
from facereel.http.routes_videos import router as videos_router
from facereel.http.services import Services

OPEN_PATHS = {"/healthz"}


def _route_of(request: Request) -> str:
    """The matched route's template (`/v1/jobs/{job_id}`): bounded label values, never the
    raw path (ids and file names would make a metric series per request)."""
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


async def authenticate(request: Request) -> None:
    """The guard already refused unauthenticated requests (and keys without the route's
    scope) before reading them; checked again here, per route, so a route added outside the
    guard's view is never open by mistake. Who it is stays on `request.state.identity`."""
    services: Services = request.app.state.services
    credentials = Credentials(bearer(request.headers.get("authorization", "")),
                              request.cookies.get(COOKIE, ""))
    identity = credentials.identify(services.settings.http.api_key_scopes, services.sessions)
    if identity is None:
        raise ApiError(401, "unauthorized", "a valid API key is required "
                       "(Authorization: Bearer <key>)", UNAUTHORIZED_HEADERS)
    needed = route_scope(request.method, request.url.path)
    if not identity.allows(needed):
        raise ApiError(403, "forbidden", f"this key's scope is {identity.scope}: "
                       f"{request.method} {request.url.path} needs {needed}")
    request.state.identity = identity


def create_app(services: Services) -> FastAPI:
    # the documents are served by routes of our own, behind the API key like everything else
    app = FastAPI(title="facereel", version="0.1.0", docs_url=None, redoc_url=None,
                  openapi_url=None, description="Who is in this video? Face recognition.")
    app.state.services = services
    errors.install(app)
    app.include_router(public_router)
    # browse first: its `/v1/results/` is the listing, not the result of a video named ""
    for router in (browse_router, videos_router, images_router, people_router, enrol_router,
                   memory_router, strangers_router, misc_router):
        app.include_router(router, dependencies=[Depends(authenticate)])

    @app.middleware("http")
    async def measure(request: Request,
                      call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        metrics = services.metrics
        try:
            response = await call_next(request)
        except Exception:  # answered with a JSON 500 by the outermost handler
            metrics.failures.labels("http_5xx").inc()
            raise
        route = _route_of(request)
        metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        if response.status_code >= 500:
            metrics.failures.labels("http_5xx").inc()
        return response

    http = services.settings.http
    policy = DoorPolicy(keys=lambda: http.api_key_scopes, sessions=services.sessions,
                        max_video_bytes=int(http.max_video_mb * 2**20),
                        max_image_bytes=int(http.max_image_mb * 2**20),
                        body_idle_s=http.body_timeout,
                        on_refused=lambda method, status: services.metrics.requests.labels(
                            method, "refused", str(status)).inc())
    app.add_middleware(RequestGuard, policy=policy)  # added last: it runs first
    return app
