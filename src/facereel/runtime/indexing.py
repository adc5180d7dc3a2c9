"""The face index writer inside `facereel up`: brings the index snapshot up to date every
`memory_index_interval` seconds (the single writer of a data directory, since one `up` runs
per data directory; elsewhere the snapshot's conditional write keeps two writers apart). A
failed round is logged and tried again at the next one: it never stops the service."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from facereel.config import Settings
from facereel.pipeline.wiring import Ports

log = logging.getLogger(__name__)


def index_writer(settings: Settings, ports: Ports) -> Callable[[threading.Event], None] | None:
    """The loop `up` runs in a thread, or None when the interval is 0 (never)."""
    interval = settings.memory.memory_index_interval
    if not interval:
        return None

    def run(stop: threading.Event) -> None:
        from facereel.app.memory import FaceMemory

        memory = FaceMemory(ports, settings)
        while not stop.wait(interval):
            try:
                memory.update_index()
            except Exception:  # a storage hiccup: the next round tries again
                log.exception("updating the face index failed; trying again in %g s",
                              interval)

    return run
