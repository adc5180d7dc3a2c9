"""Stand-ins for the batch driver's tests: a pool that runs calls in this process, a worker
that answers at once, and a listing port that generates keys lazily. `python -m
tests.support.driver_fakes N` runs N generated keys through the real driver and prints its
peak memory as JSON (a fresh process, so the peak is the driver's own)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from facereel.app.batchwork import PLAN, WindowWork
from facereel.app.sources import InputItem, Location, Sources
from facereel.core.recognize import PartialAnalysis
from facereel.deploy.ray_driver import BatchDriver
from facereel.deploy.ray_work import Call, CallFailure, Outcome
from facereel.pipeline.windows import Window
from facereel.ports.objectstore import ObjectInfo


class GeneratedListing:
    """A bucket of `count` keys, listed lazily as a real store's unordered listing is."""

    def __init__(self, count: int) -> None:
        self.count = count

    def list(self, prefix: str = "", settled_s: float = 0.0, *,
             ordered: bool = True) -> Iterator[ObjectInfo]:
        for number in range(self.count):
            yield ObjectInfo(f"{prefix}{number:09d}.mp4", 1000, f"{number:032x}", 0.0)


class QuickWorker:
    """Answers every call at once: inputs named `long*` have `windows` windows; a finished
    input's document says which windows it was joined from."""

    def __init__(self, windows: int = 3) -> None:
        self.windows = windows

    def analyze(self, work: WindowWork) -> Outcome:
        part = PartialAnalysis(work.item.video, duration_s=float(work.number))
        plan: list[Window] = [(float(n), float(n + 1)) for n in range(self.windows)]
        if work.window is PLAN and not work.item.video.startswith("long"):
            return self.finish(work.item, [part])
        return Outcome(work.item, "node-a", 0.01, work.number, part,
                       plan if work.window is PLAN else [])

    def finish(self, item: InputItem, parts: list[PartialAnalysis]) -> Outcome:
        status = "error" if any(p.error for p in parts) else "ok"
        return Outcome(item, "node-b", 0.01, result={
            "video": item.video, "status": status,
            "windows": [p.duration_s for p in parts],
            "errors": [p.error.code for p in parts if p.error is not None]})


Failing = Callable[[Call], CallFailure | None]


class InlinePool:
    """Runs each call on `worker` when submitted; `failing` may answer a failure instead."""

    def __init__(self, worker: Any, room: int = 4, failing: Failing | None = None) -> None:
        self.worker = worker
        self.size = room
        self.failing = failing
        self.answers: list[tuple[Call, Any]] = []
        self.submitted: list[Call] = []

    def room(self) -> int:
        return self.size - len(self.answers)

    def busy(self) -> int:
        return len(self.answers)

    def submit(self, call: Call) -> None:
        if len(self.submitted) < 10000:  # kept for the small tests' assertions only
            self.submitted.append(call)
        failure = self.failing(call) if self.failing is not None else None
        answer = failure or getattr(self.worker, call.method)(*call.args)
        self.answers.append((call, answer))

    def wait(self, timeout_s: float) -> list[tuple[Call, Any]]:
        answered, self.answers = self.answers, []
        return answered


def peak_rss() -> int:
    """This process's peak resident memory (VmHWM: of this program only; getrusage's
    ru_maxrss also counts the forked parent's memory from before exec)."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def main(count: int) -> None:
    sources = Sources([Location(bucket="huge", prefix="videos/")],
                      {"huge": GeneratedListing(count)})
    before = psutil.Process().memory_info().rss
    summary = BatchDriver(InlinePool(QuickWorker(), room=64), sources.items(), 5).run()
    peak = peak_rss()
    print(json.dumps({"listed": summary.listed, "done": summary.done, "before": before,
                      "peak": peak, "seconds": summary.wall_s}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
