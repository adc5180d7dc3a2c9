"""Handlers for worker-pool tests (importable by spawned worker processes)."""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable


def make_handler(argument: str) -> Callable[[str], str]:
    if argument == "broken":
        raise RuntimeError("cannot load models")

    def handle(task: str) -> str:
        if task == "segfault":
            ctypes.string_at(0)  # a crash in native code, like a decoder bug would cause
        if task == "exit":
            os._exit(3)
        if task == "hang":
            time.sleep(60)
        if task == "raise":
            raise ValueError("bad task")
        return f"{argument}:{task}"

    return handle
