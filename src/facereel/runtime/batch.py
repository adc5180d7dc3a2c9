"""Recognise many inputs with a pool of worker processes (or in-process for one worker).

Work is split into tasks: one per input, except long videos, which are cut into the same
windows the pipeline uses (`pipeline.windows`: about `window` seconds, at keyframes, whatever
the number of workers), so several workers share one long recording and the answer never
depends on how many there are. The parent joins each input's windows into its result as soon
as the last one arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from facereel.app.batchwork import failed_part, join_decided
from facereel.app.recognition import metadata_lookup, open_gallery
from facereel.app.sources import InputItem
from facereel.config import Settings
from facereel.core.results import VideoResult
from facereel.pipeline.windows import plan_windows
from facereel.runtime import batch_worker
from facereel.runtime.batch_memory import BatchMemory, input_identity
from facereel.runtime.batch_worker import Analysed, AnalyzerSpec, Crops, Task, analyzer_for
from facereel.runtime.pool import TaskFailure, WorkerPool

ProgressCallback = Callable[[int, int], None]  # (tasks done, tasks in all)


def _failure(task: Task, failure: TaskFailure) -> list[Analysed]:
    code = {"crashed": "worker_crashed", "timeout": "timeout"}.get(failure.reason, "internal_error")
    item = task.item or InputItem(task.index, Path(task.path).name, path=task.path)
    return [Analysed(failed_part(item, code, failure.message))]


def _spec(settings: Settings, items: list[InputItem], faces: bool,
          remember: bool) -> AnalyzerSpec:
    recognition = settings.recognition
    buckets = remember or any(item.bucket for item in items)
    return AnalyzerSpec(recognition.face_config(),
                        replace(recognition.recognize_options(), keep_faces=faces),
                        settings.pipeline.window, settings.storage if buckets else None,
                        remember)


def plan_tasks(items: list[InputItem], window_s: float, remember: bool = False) -> list[Task]:
    """A task per window of each local input (planned here, where the file is), one per
    input in a bucket (its worker plans and analyses its windows). With `remember`, a local
    input's tasks carry its key and content hash."""
    tasks: list[Task] = []
    for item in items:
        if item.bucket:
            tasks.append(Task(item.index, item.key, item=item))
            continue
        key, etag = input_identity(Path(item.path)) if remember else ("", "")
        tasks += [Task(item.index, item.path, start, end, window=n, key=key, etag=etag)
                  for n, (start, end) in enumerate(plan_windows(Path(item.path), window_s))]
    return tasks


def recognize_paths(paths: list[Path], settings: Settings,
                    progress: ProgressCallback | None = None, faces: bool = False,
                    remember: bool = False) -> Iterator[tuple[int, VideoResult]]:
    """Yield `(input index, result)` as inputs finish; one result per input, always."""
    items = [InputItem(i, p.name, path=str(p)) for i, p in enumerate(paths)]
    return recognize_items(items, settings, progress, faces, remember)


def recognize_items(items: list[InputItem], settings: Settings,
                    progress: ProgressCallback | None = None, faces: bool = False,
                    remember: bool = False) -> Iterator[tuple[int, VideoResult]]:
    """Yield `(item index, result)` as inputs finish; one result per input, always. With
    `faces`, each person and stranger points to a crop of their face (`<video>.faces/...`,
    relative to the result document) and the result carries those JPEGs in `face_images`.
    With `remember`, every face track of a local input goes into the face memory
    (`runtime.batch_memory`)."""
    tasks = plan_tasks(items, settings.pipeline.window, remember)
    workers = min(settings.pipeline.worker_count, len(tasks))
    joiner = _Joiner(settings, faces, BatchMemory(settings) if remember else None)
    by_index = {item.index: item for item in items}
    parts: dict[int, list[tuple[int, float, Analysed]]] = {}
    remaining = {item.index: 0 for item in items}
    for task in tasks:
        remaining[task.index] += 1
    spec = _spec(settings, items, faces, remember)
    timeout_s = settings.pipeline.item_timeout
    for done, (task, found) in enumerate(_run(tasks, spec, timeout_s, workers), 1):
        if progress is not None:
            progress(done, len(tasks))
        parts.setdefault(task.index, []).extend((task.window, task.start_s, a) for a in found)
        remaining[task.index] -= 1
        if remaining[task.index] == 0:
            ordered = [a for *_, a in sorted(parts.pop(task.index), key=lambda p: p[:2])]
            yield task.index, joiner.join(by_index[task.index].video, task, ordered)


class _Joiner:
    """Joins an input's windows into its result (and remembers its faces when asked)."""

    def __init__(self, settings: Settings, faces: bool, memory: BatchMemory | None) -> None:
        self.gallery = open_gallery(settings, create=True)
        self.lookup = metadata_lookup(settings)
        self.options = settings.recognition.recognize_options()
        self.faces, self.memory = faces, memory

    def join(self, video: str, task: Task, analysed: list[Analysed]) -> VideoResult:
        result, decided = join_decided(video, [a.part for a in analysed], self.gallery,
                                       self.options, self.lookup, self.faces)
        if self.memory is not None and task.key:
            crops: Crops = {tid: shots for a in analysed for tid, shots in a.crops.items()}
            self.memory.remember(task.key, task.etag, decided, crops)
        return result


def _run(tasks: list[Task], spec: AnalyzerSpec, timeout_s: float,
         workers: int) -> Iterator[tuple[Task, list[Analysed]]]:
    if workers <= 1:
        handle = analyzer_for(spec)
        for task in tasks:
            yield task, handle(task)
        return
    pool: WorkerPool[Task, list[Analysed]] = WorkerPool(
        workers, analyzer_for, spec, timeout_s=timeout_s, preload=(batch_worker.__name__,)
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
