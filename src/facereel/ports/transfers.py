"""Running several storage calls: in parallel where each waits on a network round trip."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from facereel.ports.objectstore import ObjectStore

T = TypeVar("T")
IO_THREADS = 8


def run_all(store: ObjectStore, calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run storage calls, in parallel for a remote store (each waits on a round trip; a
    local folder answers at once, where threads would only add overhead)."""
    if not store.remote or len(calls) < 2:
        return [call() for call in calls]
    with ThreadPoolExecutor(min(IO_THREADS, len(calls))) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]
