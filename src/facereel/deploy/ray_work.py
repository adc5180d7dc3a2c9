"""What a Ray actor of a batch is and what its calls carry; plain Python, so the driver's loop
and its tests need no cluster. `deploy.ray` turns `BatchWorker` into an actor."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from facereel.app.batchwork import PLAN, ItemAnalyzer, Judge, WindowWork
from facereel.app.sources import InputItem, Location, OutputSink, make_sink
from facereel.config import Settings
from facereel.core.recognize import PartialAnalysis
from facereel.core.results import VideoResult
from facereel.logs import configure
from facereel.pipeline.windows import Window

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Call:
    """One actor method call of a run: which input it is for and which attempt this is."""

    method: str  # "analyze" or "finish"
    args: tuple[Any, ...]
    item: InputItem
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class CallFailure:
    """Why a call gave no answer: `lost` (its actor or node died) or `error` (it raised)."""

    reason: str
    message: str


@dataclass(slots=True)
class Outcome:
    """A call's answer: a window's partial analysis (and, from the worker that planned the
    windows, the plan), or a finished input's result document (already written)."""

    item: InputItem
    node: str  # where it ran
    seconds: float  # worker time it took
    number: int = 0
    part: PartialAnalysis | None = None
    windows: list[Window] = field(default_factory=list)
    result: dict[str, Any] | None = None


class BatchWorker:
    """A worker process of the cluster: the face models loaded once, the run's judge (gallery
    and people's metadata, from the driver) and the sink results are written to."""

    def __init__(self, settings: Settings, judge: Judge, target: Location | None,
                 node: Callable[[], str]) -> None:
        configure(settings.log_level, settings.log_format)
        # results written somewhere show the faces they name (crops beside the document)
        self.analyzer = ItemAnalyzer.load(settings, keep_faces=target is not None)
        self.judge = judge
        self.sink: OutputSink | None = make_sink(target, settings.storage) if target else None
        self.node = node()

    def ready(self) -> str:
        return self.node

    def analyze(self, work: WindowWork) -> Outcome:
        """A window (PLAN: plan the windows, take the first); a video of one window is
        finished here at once, without a second call."""
        started = time.perf_counter()
        analyzed = self.analyzer.analyze(work)
        if work.window is PLAN and len(analyzed.windows) == 1:
            return self._finish(work.item, [analyzed.part], started)
        log.info("window %d of %s analysed", work.number, work.item.video,
                 extra=self._fields(work.item))
        return Outcome(work.item, self.node, time.perf_counter() - started, work.number,
                       analyzed.part, analyzed.windows)

    def finish(self, item: InputItem, parts: list[PartialAnalysis]) -> Outcome:
        """The join: who the windows show, written where results go."""
        return self._finish(item, parts, time.perf_counter())

    def _finish(self, item: InputItem, parts: list[PartialAnalysis],
                started: float) -> Outcome:
        result: VideoResult = self.judge.result(item, parts, faces=self.sink is not None)
        if self.sink is not None:
            self.sink.write(item.name, result)
        log.info("%s done: %s", item.video, result.status, extra=self._fields(item))
        return Outcome(item, self.node, time.perf_counter() - started,
                       result=result.to_dict())

    def _fields(self, item: InputItem) -> dict[str, Any]:
        return {"correlation_id": item.correlation, "key": item.key or item.path,
                "node": self.node}
