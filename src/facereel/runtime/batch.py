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
from facereel.config.sections import RecognitionSettings, StorageSettings
from facereel.core.faces import FaceModels
from facereel.core.gallery import Gallery
from facereel.core.identify import EmbeddingSink
from facereel.core.people import MetadataLookup
from facereel.core.recognize import (
    FaceFiles,
    MediaAnalyzer,
    PartialAnalysis,
    RecognizeOptions,
    combine_decided,
    number_windows,
)
from facereel.core.results import ErrorInfo, VideoResult
from facereel.core.sniff import MEDIA_EXTENSIONS
from facereel.pipeline.parts import ShotCollector
from facereel.pipeline.windows import plan_windows
from facereel.runtime.batch_memory import (
    Analysed,
    BatchMemory,
    Crops,
    TeeSink,
    input_identity,
    store_part,
)
from facereel.runtime.pool import TaskFailure, WorkerPool

ProgressCallback = Callable[[int, int], None]  # (tasks done, tasks in all)


@dataclass(frozen=True, slots=True)
class Task:
    index: int  # position of the input
    path: str
    start_s: float = 0.0
    end_s: float | None = None
    window: int = 0  # which window of the input
    key: str = ""  # the input's key and content hash, when its faces are remembered
    etag: str = ""


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
    storage: StorageSettings | None = None  # keep the shots as parts here (remembering)


def _analyzer(spec: WorkerSpec) -> Callable[[Task], Analysed]:
    options = replace(spec.recognition.recognize_options(), keep_faces=spec.keep_faces)
    models = FaceModels(spec.recognition.face_config()).load()
    analyzer = MediaAnalyzer(models, options)

    def handle(task: Task) -> Analysed:
        if spec.storage is None or not task.key:
            return Analysed(analyzer.analyze(Path(task.path), task.start_s, task.end_s))
        embedded, kept = EmbeddingSink(models, keep_faces=spec.keep_faces), ShotCollector()
        part = analyzer.analyze(Path(task.path), task.start_s, task.end_s,
                                TeeSink(embedded, kept))
        part.analysis.faces = embedded.faces
        return Analysed(part, store_part(spec.storage, part, task.key, task.etag,
                                         task.window, kept))

    return handle


def _failure(task: Task, failure: TaskFailure) -> Analysed:
    code = {"crashed": "worker_crashed", "timeout": "timeout"}.get(failure.reason, "internal_error")
    name = Path(task.path).name
    return Analysed(PartialAnalysis(name, error=ErrorInfo(code, f"{name}: {failure.message}")))


def recognize_paths(paths: list[Path], settings: Settings,
                    progress: ProgressCallback | None = None, faces: bool = False,
                    remember: bool = False) -> Iterator[tuple[int, VideoResult]]:
    """Yield `(input index, result)` as inputs finish; one result per input, always. With
    `faces`, each person and stranger points to a crop of their face (`<video>.faces/...`,
    relative to the result document) and the result carries those JPEGs in `face_images`.
    With `remember`, every face track goes into the face memory (`runtime.batch_memory`)."""
    ids = [input_identity(p) if remember else ("", "") for p in paths]
    tasks = [Task(i, str(p), start, end, n, *ids[i]) for i, p in enumerate(paths)
             for n, (start, end) in enumerate(plan_windows(p, settings.pipeline.window))]
    workers = min(settings.pipeline.worker_count, len(tasks))
    joiner = _Joiner(settings, faces, BatchMemory(settings) if remember else None)
    parts: dict[int, dict[int, Analysed]] = {}
    remaining = {i: sum(1 for t in tasks if t.index == i) for i in range(len(paths))}
    spec = WorkerSpec(settings.recognition, faces, settings.storage if remember else None)
    for done, (task, part) in enumerate(_run(tasks, spec, settings.pipeline.item_timeout,
                                             workers), 1):
        if progress is not None:
            progress(done, len(tasks))
        parts.setdefault(task.index, {})[task.window] = part
        remaining[task.index] -= 1
        if remaining[task.index] == 0:
            windows = [w for _, w in sorted(parts.pop(task.index).items())]
            yield task.index, joiner.join(task, windows)


class _Joiner:
    """Joins an input's windows into its result (and remembers its faces when asked)."""

    def __init__(self, settings: Settings, faces: bool, memory: BatchMemory | None) -> None:
        self.gallery: Gallery = open_gallery(settings, create=True)
        self.lookup: MetadataLookup | None = metadata_lookup(settings)
        self.options: RecognizeOptions = settings.recognition.recognize_options()
        self.faces, self.memory = faces, memory

    def join(self, task: Task, analysed: list[Analysed]) -> VideoResult:
        name = Path(task.path).name
        windows = [a.part for a in analysed]
        number_windows(windows)
        locator = FaceFiles(name, windows) if self.faces else None
        result, decided = combine_decided(name, windows, self.gallery, self.options,
                                          self.lookup, locator)
        if locator is not None:
            result.face_images = locator.images
        if self.memory is not None and task.key:
            crops: Crops = {tid: shots for a in analysed for tid, shots in a.crops.items()}
            self.memory.remember(task.key, task.etag, decided, crops)
        return result


def _run(tasks: list[Task], spec: WorkerSpec, timeout_s: float,
         workers: int) -> Iterator[tuple[Task, Analysed]]:
    if workers <= 1:
        handle = _analyzer(spec)
        for task in tasks:
            yield task, handle(task)
        return
    pool: WorkerPool[Task, Analysed] = WorkerPool(
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
