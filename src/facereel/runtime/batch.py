"""Recognise many inputs with a pool of worker processes (or in-process for one worker).

Work is split into tasks: one per input, except long videos, which are cut into the same
windows the pipeline uses (`pipeline.windows`: about `window` seconds, at keyframes, whatever
the number of workers), so several workers share one long recording and the answer never
depends on how many there are. The parent joins each input's windows into its result as soon
as the last one arrives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from facereel.app.recognition import metadata_lookup, open_gallery
from facereel.config import Settings
from facereel.core.recognize import PartialAnalysis, combine
from facereel.core.results import ErrorInfo, VideoResult
from facereel.core.sniff import MEDIA_EXTENSIONS
from facereel.pipeline.windows import plan_windows
from facereel.runtime import batch_worker
from facereel.runtime.batch_worker import AnalyzerSpec, Task, analyzer_for
from facereel.runtime.pool import TaskFailure, WorkerPool

ProgressCallback = Callable[[int, int], None]  # (tasks done, tasks in all)


def collect_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded (recursively, sorted) to the media files inside them."""
    inputs: list[Path] = []
    for path in paths:
        if path.is_dir():
            inputs.extend(
                p for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in MEDIA_EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            inputs.append(path)
    return inputs


def output_keys(inputs: list[Path]) -> list[str]:
    """A distinct output name per input: its path relative to the folder all inputs share
    (`a/x.mp4` and `b/x.mp4` stay apart; one file alone is its name)."""
    resolved = [Path(os.path.abspath(p)) for p in inputs]  # noqa: PTH100 - resolve() would follow links
    if not resolved:
        return []
    root = Path(os.path.commonpath([p.parent for p in resolved]))
    return [p.relative_to(root).as_posix() for p in resolved]


def _failure(task: Task, failure: TaskFailure) -> PartialAnalysis:
    code = {"crashed": "worker_crashed", "timeout": "timeout"}.get(failure.reason, "internal_error")
    name = Path(task.path).name
    return PartialAnalysis(name, error=ErrorInfo(code, f"{name}: {failure.message}"))


def recognize_paths(paths: list[Path], settings: Settings,
                    progress: ProgressCallback | None = None) -> Iterator[tuple[int, VideoResult]]:
    """Yield `(input index, result)` as inputs finish; one result per input, always."""
    tasks = [Task(i, str(p), start, end) for i, p in enumerate(paths)
             for start, end in plan_windows(p, settings.pipeline.window)]
    workers = min(settings.pipeline.worker_count, len(tasks))
    gallery = open_gallery(settings)
    lookup = metadata_lookup(settings)
    options = settings.recognition.recognize_options()
    parts: dict[int, list[PartialAnalysis]] = {}
    remaining = {i: sum(1 for t in tasks if t.index == i) for i in range(len(paths))}
    for done, (task, part) in enumerate(_run(tasks, settings, workers), 1):
        if progress is not None:
            progress(done, len(tasks))
        parts.setdefault(task.index, []).append(part)
        remaining[task.index] -= 1
        if remaining[task.index] == 0:
            name = Path(task.path).name
            yield task.index, combine(name, parts.pop(task.index), gallery, options, lookup)


def _run(tasks: list[Task], settings: Settings,
         workers: int) -> Iterator[tuple[Task, PartialAnalysis]]:
    recognition = settings.recognition
    spec = AnalyzerSpec(recognition.face_config(), recognition.recognize_options())
    if workers <= 1:
        handle = analyzer_for(spec)
        for task in tasks:
            yield task, handle(task)
        return
    pool: WorkerPool[Task, PartialAnalysis] = WorkerPool(
        workers, analyzer_for, spec, timeout_s=settings.pipeline.item_timeout,
        preload=(batch_worker.__name__,)
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
