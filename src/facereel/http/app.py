"""The FastAPI application: routes, auth, error bodies, request metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, Request, Response

from facereel.http import errors
from facereel.http.auth import require_key
from facereel.http.routes_images import router as images_router
from facereel.http.routes_misc import public_router
from facereel.http.routes_misc import router as misc_router
from facereel.http.routes_people import router as people_router
from facereel.http.routes_videos import router as videos_router
from facereel.http.services import Services

OPEN_PATHS = {"/healthz"}


def _route_of(request: Request) -> str:
    """The matched route's template (`/v1/jobs/{job_id}`): bounded label values, never the
    raw path (ids and file names would make a metric series per request)."""
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


async def authenticate(request: Request) -> None:
    services: Services = request.app.state.services
    require_key(request, services.settings.http.api_key_list)


def create_app(services: Services) -> FastAPI:
    # the documents are served by routes of our own, behind the API key like everything else
    app = FastAPI(title="facereel", version="0.1.0", docs_url=None, redoc_url=None,
                  openapi_url=None, description="Who is in this video? Face recognition.")
    app.state.services = services
    errors.install(app)
    app.include_router(public_router)
    for router in (videos_router, images_router, people_router, misc_router):
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

    return app
