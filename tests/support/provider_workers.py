"""Worker targets for provider tests (importable by forkserver worker processes).

Each is bound with functools.partial to its settings and then called as `target(slot, stop)`,
as `LocalProcessProvider` calls `image_worker_main`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from facereel.ports.queue.sqlite import SqliteQueue

POLL_S = 0.05


def pid_worker(directory: Path, slot: int, stop: Any) -> None:
    """Write `<slot>-<pid>.pid` on start, `<slot>-<pid>.stopped` after a clean stop."""
    stem = directory / f"{slot}-{os.getpid()}"
    stem.with_suffix(".pid").write_text(str(os.getpid()), encoding="utf-8")
    while not stop.wait(POLL_S):
        pass
    stem.with_suffix(".stopped").write_text(str(os.getpid()), encoding="utf-8")


def stubborn_worker(directory: Path, slot: int, stop: Any) -> None:
    """Write `<slot>-<pid>.pid`, then never look at the stop event (a hung worker)."""
    path = directory / f"{slot}-{os.getpid()}.pid"
    path.write_text(str(os.getpid()), encoding="utf-8")
    while True:
        time.sleep(POLL_S)


def queue_worker(queue_path: Path, queue_name: str, slot: int, stop: Any) -> None:
    """Acknowledge requests from a SqliteQueue until asked to stop."""
    queue = SqliteQueue(queue_path, queue_name, visibility_s=30.0)
    while not stop.is_set():
        for message in queue.receive(1, wait_s=POLL_S):
            queue.ack(message)


def long_waiter(directory: Path, slot: int, stop: Any) -> None:
    """Write `<slot>-<pid>.pid`, then sit in one long `stop.wait` (an idle worker)."""
    (directory / f"{slot}-{os.getpid()}.pid").write_text(str(os.getpid()), encoding="utf-8")
    stop.wait(3600)
