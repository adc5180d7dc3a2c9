"""What the HTTP routes use, built once per server from Settings (kept on `app.state`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from facereel.app.jobs import JobStore
from facereel.config import Settings
from facereel.http.auth import Sessions
from facereel.http.metrics import Metrics
from facereel.pipeline.wiring import Ports
from facereel.runtime.watcher import Watcher

if TYPE_CHECKING:
    from facereel.app.memory import FaceMemory
    from facereel.imagetier.client import ImageTierClient
    from facereel.memory.audit import AuditLog


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

    @cached_property
    def memory(self) -> FaceMemory:
        """The face memory's use cases on these ports (search, forget)."""
        from facereel.app.memory import FaceMemory

        return FaceMemory(self.ports, self.settings)

    @cached_property
    def audit(self) -> AuditLog:
        from facereel.memory.audit import AuditLog

        return AuditLog(self.settings.audit_path)


def caller(request: Request) -> str:
    """Who is asking, as the audit log names callers (set by the route's authentication)."""
    identity = getattr(request.state, "identity", None)
    return str(getattr(identity, "who", "unknown"))


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


Svc = Annotated[Services, Depends(services)]  # what a route declares to get the services
