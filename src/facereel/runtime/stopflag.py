"""A stop signal shared with worker processes that survives their being killed.

`multiprocessing.Event` does not: a process killed (SIGKILL, OOM) while inside `Event.wait()`
leaves the event's condition counting a sleeper that will never wake, and the next `set()`
then blocks forever waiting for it, so `facereel up` could never shut down after a worker
died idle. A flag in shared memory, polled, has no such state; workers check it between
messages and while idle anyway, so polling costs nothing noticeable.
"""

from __future__ import annotations

import ctypes
import time
from typing import Any

POLL_S = 0.05


class StopFlag:
    def __init__(self, context: Any) -> None:
        self._flag = context.RawValue(ctypes.c_bool, False)  # passed to children at start

    def set(self) -> None:
        self._flag.value = True

    def is_set(self) -> bool:
        return bool(self._flag.value)

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False when `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = POLL_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, POLL_S))
        return True
