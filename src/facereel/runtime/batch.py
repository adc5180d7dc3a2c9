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
from dataclasses import dataclass, replace
from pathlib import Path

from facereel.app.recognition import metadata_lookup, open_gallery
from facereel.config import Settings
from facereel.config.sections import RecognitionSettings
from facereel.core.faces import FaceModels
from facereel.core.gallery import Gallery
from facereel.core.people import MetadataLookup
from facereel.core.recognize import (
    FaceFiles,
    MediaAnalyzer,
    PartialAnalysis,
    RecognizeOptions,
    combine,
    number_windows,
)
from facereel.core.results import ErrorInfo, VideoResult
from facereel.core.sniff import MEDIA_EXTENSIONS
from facereel.pipeline.windows import plan_windows
from facereel.runtime.pool import TaskFailure, WorkerPool

ProgressCallback = Callable[[int, int], None]  # (tasks done, tasks in all)


@dataclass(frozen=True, slots=True)
class Task:
    index: int  # position of the input
    path: str
    start_s: float = 0.0
    end_s: float | None = None
    window: int = 0  # which window of the input


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


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a batch worker process builds its analyzer from."""

    recognition: RecognitionSettings
    keep_faces: bool = False


def _analyzer(spec: WorkerSpec) -> Callable[[Task], PartialAnalysis]:
    options = replace(spec.recognition.recognize_options(), keep_faces=spec.keep_faces)
    analyzer = MediaAnalyzer(FaceModels(spec.recognition.face_config()).load(), options)

    def handle(task: Task) -> PartialAnalysis:
        return analyzer.analyze(Path(task.path), task.start_s, task.end_s)

    return handle


def _failure(task: Task, failure: TaskFailure) -> PartialAnalysis:
    code = {"crashed": "worker_crashed", "timeout": "timeout"}.get(failure.reason, "internal_error")
    name = Path(task.path).name
    return PartialAnalysis(name, error=ErrorInfo(code, f"{name}: {failure.message}"))


def recognize_paths(paths: list[Path], settings: Settings,
                    progress: ProgressCallback | None = None,
                    faces: bool = False) -> Iterator[tuple[int, VideoResult]]:
    """Yield `(input index, result)` as inputs finish; one result per input, always. With
    `faces`, each person and stranger points to a crop of their face (`<video>.faces/...`,
    relative to the result document) and the result carries those JPEGs in `face_images`."""
    tasks = [Task(i, str(p), start, end, n) for i, p in enumerate(paths)
             for n, (start, end) in enumerate(plan_windows(p, settings.pipeline.window))]
    workers = min(settings.pipeline.worker_count, len(tasks))
    gallery = open_gallery(settings, create=True)
    lookup = metadata_lookup(settings)
    options = settings.recognition.recognize_options()
    parts: dict[int, dict[int, PartialAnalysis]] = {}
    remaining = {i: sum(1 for t in tasks if t.index == i) for i in range(len(paths))}
    spec = WorkerSpec(settings.recognition, faces)
    for done, (task, part) in enumerate(_run(tasks, spec, settings.pipeline.item_timeout,
                                             workers), 1):
        if progress is not None:
            progress(done, len(tasks))
        parts.setdefault(task.index, {})[task.window] = part
        remaining[task.index] -= 1
        if remaining[task.index] == 0:
            windows = [w for _, w in sorted(parts.pop(task.index).items())]
            yield task.index, _joined(Path(task.path).name, windows, gallery, options, lookup,
                                      faces)


def _joined(name: str, windows: list[PartialAnalysis], gallery: Gallery,
            options: RecognizeOptions, lookup: MetadataLookup | None,
            faces: bool) -> VideoResult:
    number_windows(windows)
    locator = FaceFiles(name, windows) if faces else None
    result = combine(name, windows, gallery, options, lookup, locator)
    if locator is not None:
        result.face_images = locator.images
    return result


def _run(tasks: list[Task], spec: WorkerSpec, timeout_s: float,
         workers: int) -> Iterator[tuple[Task, PartialAnalysis]]:
    if workers <= 1:
        handle = _analyzer(spec)
        for task in tasks:
            yield task, handle(task)
        return
    pool: WorkerPool[Task, PartialAnalysis] = WorkerPool(
        workers, _analyzer, spec, timeout_s=timeout_s, preload=(__name__,))
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
