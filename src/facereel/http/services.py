"""What the HTTP routes use, built once per server from Settings (kept on `app.state`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from facereel.app.jobs import JobStore
from facereel.config import Settings
from facereel.http.auth import Sessions
from facereel.http.metrics import Metrics
from facereel.pipeline.wiring import Ports
from facereel.runtime.watcher import Watcher

if TYPE_CHECKING:
    from facereel.imagetier.client import ImageTierClient


@dataclass
class Services:
    settings: Settings
    ports: Ports
    jobs: JobStore
    submitter: Watcher  # queues uploads for the pipeline and remembers them
    metrics: Metrics
    images: ImageTierClient | None = None  # None: the image tier is not running
    workers: Callable[[], dict[str, int]] = field(default=lambda: {})
    gallery_lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: Sessions = field(default_factory=Sessions)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


Svc = Annotated[Services, Depends(services)]  # what a route declares to get the services
