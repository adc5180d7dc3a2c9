"""The driver of a batch on a cluster: it streams the listing into a pool of workers, never
holding more of it than the pool has room for (backpressure: a listing of millions of keys
costs the memory of the calls in flight), fans long videos out into their windows, hands each
completed set of windows to a worker for the join, retries what was lost, and counts.

The driver never touches a video: workers open inputs where they live and write results
where they go; what comes back is a window's partial analysis (kilobytes) or, for a finished
input, its result document.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from facereel.app.batchwork import PLAN, WindowWork, failed_part
from facereel.app.sources import InputItem
from facereel.core.recognize import PartialAnalysis
from facereel.deploy.ray_work import Call, CallFailure, Outcome

log = logging.getLogger(__name__)
WAIT_S = 1.0


class CallPool(Protocol):
    def room(self) -> int: ...

    def busy(self) -> int: ...

    def submit(self, call: Call) -> None: ...

    def wait(self, timeout_s: float) -> list[tuple[Call, Any | CallFailure]]: ...


@dataclass
class NodeTally:
    videos: int = 0  # inputs finished (joined and written) there
    calls: int = 0  # windows analysed and joins made there
    busy_s: float = 0.0  # worker time spent on them


@dataclass
class RunSummary:
    listed: int = 0
    done: int = 0  # result documents written (errors included)
    errors: int = 0  # of which error records
    retried: int = 0  # calls run again after their worker or node was lost
    lost: int = 0  # inputs whose result could not be written at all
    wall_s: float = 0.0
    nodes: dict[str, NodeTally] = field(default_factory=dict)

    def tally(self, node: str) -> NodeTally:
        return self.nodes.setdefault(node, NodeTally())

    def to_dict(self) -> dict[str, Any]:
        return {"listed": self.listed, "done": self.done, "errors": self.errors,
                "retried": self.retried, "lost": self.lost, "wall_s": round(self.wall_s, 3),
                "nodes": {node: {"videos": t.videos, "calls": t.calls,
                                 "busy_s": round(t.busy_s, 3),
                                 "videos_per_s": round(t.videos / self.wall_s, 3)
                                 if self.wall_s else 0.0}
                          for node, t in sorted(self.nodes.items())}}


@dataclass
class _Join:
    total: int
    parts: dict[int, PartialAnalysis] = field(default_factory=dict)


class BatchDriver:
    """One run: `items` (a lazy listing) through `pool`; `on_result` sees every finished
    input's outcome (progress, `--json`)."""

    def __init__(self, pool: CallPool, items: Iterator[InputItem], max_attempts: int,
                 on_result: Callable[[Outcome], None] | None = None,
                 on_tick: Callable[[RunSummary, bool], None] | None = None) -> None:
        self.pool = pool
        self.items = items
        self.max_attempts = max_attempts
        self.on_result = on_result
        self.on_tick = on_tick  # after each wait: the counts, and whether listing is over
        self.summary = RunSummary()
        self.todo: deque[Call] = deque()  # retries and follow-ups go before new inputs
        self.joins: dict[int, _Join] = {}
        self.listed_all = False

    def run(self) -> RunSummary:
        started = time.monotonic()
        while True:
            self._fill()
            if not self.pool.busy() and not self.todo and self.listed_all:
                break
            for call, answer in self.pool.wait(WAIT_S):
                self._handle(call, answer)
            self.summary.wall_s = time.monotonic() - started
            if self.on_tick is not None:
                self.on_tick(self.summary, self.listed_all)
        self.summary.wall_s = time.monotonic() - started
        return self.summary

    def _fill(self) -> None:
        while self.pool.room() > 0:
            call = self._next()
            if call is None:
                return
            self.pool.submit(call)

    def _next(self) -> Call | None:
        if self.todo:
            return self.todo.popleft()
        if self.listed_all:
            return None
        item = next(self.items, None)
        if item is None:
            self.listed_all = True
            return None
        self.summary.listed += 1
        return Call("analyze", (WindowWork(item),), item)

    def _handle(self, call: Call, answer: Any | CallFailure) -> None:
        if isinstance(answer, CallFailure):
            self._failed(call, answer)
            return
        outcome: Outcome = answer
        tally = self.summary.tally(outcome.node)
        tally.calls += 1
        tally.busy_s += outcome.seconds
        if outcome.result is not None:
            self._finished(outcome, tally)
        elif outcome.part is not None:
            self._window(call.item, outcome.number, outcome.part, outcome.windows)

    def _finished(self, outcome: Outcome, tally: NodeTally) -> None:
        tally.videos += 1
        self.summary.done += 1
        if outcome.result is not None and outcome.result.get("status") == "error":
            self.summary.errors += 1
        if self.on_result is not None:
            self.on_result(outcome)

    def _window(self, item: InputItem, number: int, part: PartialAnalysis,
                windows: list[Any]) -> None:
        """A window is in; the plan (from the first) fans the others out; the last starts
        the join."""
        if windows:
            self.joins[item.index] = _Join(len(windows))
            self.todo.extend(Call("analyze", (WindowWork(item, n, w),), item)
                             for n, w in enumerate(windows) if n != number)
        join = self.joins[item.index]
        join.parts[number] = part
        if len(join.parts) == join.total:
            del self.joins[item.index]
            parts = [join.parts[n] for n in range(join.total)]
            self.todo.append(Call("finish", (item, parts), item))

    def _failed(self, call: Call, failure: CallFailure) -> None:
        if call.attempt < self.max_attempts:
            self.summary.retried += 1
            self.todo.appendleft(replace(call, attempt=call.attempt + 1))
            return
        code = "worker_crashed" if failure.reason == "lost" else "internal_error"
        message = (f"gave up after {call.attempt} attempts, the last one: {failure.message}")
        log.error("%s of %s failed for good: %s", call.method, call.item.video, message,
                  extra={"correlation_id": call.item.correlation})
        if call.method == "finish":  # nothing can write its result: say so in the summary
            self.summary.lost += 1
            return
        work: WindowWork = call.args[0]
        part = failed_part(call.item, code, message)
        whole = [(0.0, None)] if work.window is PLAN else []
        self._window(call.item, work.number, part, whole)
