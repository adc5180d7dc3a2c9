"""Recognise many inputs with a pool of worker processes (or in-process for one worker).

Work is split into tasks: one per input, except long videos, which are cut into the same
windows the pipeline uses (`pipeline.windows`: about `window` seconds, at keyframes, whatever
the number of workers), so several workers share one long recording and the answer never
depends on how many there are. The parent joins each input's windows into its result as soon
as the last one arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from facereel.app.batchwork import ItemAnalyzer, failed_part, join_windows
from facereel.app.recognition import metadata_lookup, open_gallery
from facereel.app.sources import InputItem
from facereel.config import Settings
from facereel.core.recognize import PartialAnalysis
from facereel.core.results import VideoResult
from facereel.pipeline.windows import plan_windows
from facereel.runtime.pool import TaskFailure, WorkerPool

ProgressCallback = Callable[[int, int], None]  # (tasks done, tasks in all)


@dataclass(frozen=True, slots=True)
class Task:
    index: int  # position of the input
    path: str
    start_s: float = 0.0
    end_s: float | None = None
    item: InputItem | None = None  # an input in a bucket: all its windows, by one worker


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a batch worker process builds its analyzer from."""

    settings: Settings
    keep_faces: bool = False  # keep each track's first shot, for results that show faces


def _analyzer(spec: WorkerSpec) -> Callable[[Task], list[PartialAnalysis]]:
    worker = ItemAnalyzer(spec.settings, spec.keep_faces)

    def handle(task: Task) -> list[PartialAnalysis]:
        if task.item is not None:
            return worker.analyze_all(task.item)
        return [worker.analyzer.analyze(Path(task.path), task.start_s, task.end_s)]

    return handle


def _failure(task: Task, failure: TaskFailure) -> list[PartialAnalysis]:
    code = {"crashed": "worker_crashed", "timeout": "timeout"}.get(failure.reason, "internal_error")
    item = task.item or InputItem(task.index, Path(task.path).name, path=task.path)
    return [failed_part(item, code, failure.message)]


def plan_tasks(items: list[InputItem], window_s: float) -> list[Task]:
    """A task per window of each local input (planned here, where the file is), one per
    input in a bucket (its worker plans and analyses its windows)."""
    return [task for item in items for task in (
        [Task(item.index, item.key, item=item)] if item.bucket else
        [Task(item.index, item.path, start, end)
         for start, end in plan_windows(Path(item.path), window_s)])]


def recognize_paths(paths: list[Path], settings: Settings,
                    progress: ProgressCallback | None = None,
                    faces: bool = False) -> Iterator[tuple[int, VideoResult]]:
    """Yield `(input index, result)` as inputs finish; one result per input, always."""
    items = [InputItem(i, p.name, path=str(p)) for i, p in enumerate(paths)]
    return recognize_items(items, settings, progress, faces)


def recognize_items(items: list[InputItem], settings: Settings,
                    progress: ProgressCallback | None = None, faces: bool = False,
                    ) -> Iterator[tuple[int, VideoResult]]:
    """Yield `(item index, result)` as inputs finish; one result per input, always. With
    `faces`, each person and stranger points to a crop of their face (`<video>.faces/...`,
    relative to the result document) and the result carries those JPEGs in `face_images`."""
    tasks = plan_tasks(items, settings.pipeline.window)
    workers = min(settings.pipeline.worker_count, len(tasks))
    gallery = open_gallery(settings, create=True)
    lookup = metadata_lookup(settings)
    options = settings.recognition.recognize_options()
    by_index = {item.index: item for item in items}
    parts: dict[int, list[tuple[float, PartialAnalysis]]] = {}
    remaining = {item.index: 0 for item in items}
    for task in tasks:
        remaining[task.index] += 1
    spec = WorkerSpec(settings, faces)
    for done, (task, found) in enumerate(_run(tasks, spec, workers), 1):
        if progress is not None:
            progress(done, len(tasks))
        parts.setdefault(task.index, []).extend((task.start_s, part) for part in found)
        remaining[task.index] -= 1
        if remaining[task.index] == 0:
            ordered = [part for _, part in sorted(parts.pop(task.index), key=lambda p: p[0])]
            yield task.index, join_windows(by_index[task.index].video, ordered, gallery,
                                           options, lookup, faces)


def _run(tasks: list[Task], spec: WorkerSpec,
         workers: int) -> Iterator[tuple[Task, list[PartialAnalysis]]]:
    if workers <= 1:
        handle = _analyzer(spec)
        for task in tasks:
            yield task, handle(task)
        return
    pool: WorkerPool[Task, list[PartialAnalysis]] = WorkerPool(
        workers, _analyzer, spec, timeout_s=spec.settings.pipeline.item_timeout,
        preload=(__name__,)
    )
    for position, outcome in pool.run(tasks):
        task = tasks[position]
        yield task, _failure(task, outcome) if isinstance(outcome, TaskFailure) else outcome


def in_order(results: Iterator[tuple[int, VideoResult]]) -> Iterator[tuple[int, VideoResult]]:
    """Re-order `(index, result)` pairs into input order, releasing each as soon as it can."""
    waiting: dict[int, VideoResult] = {}
    expected = 0
    for index, result in results:
        waiting[index] = result
        while expected in waiting:
            yield expected, waiting.pop(expected)
            expected += 1
