"""What a batch's worker processes run: one analysis at a time, with the models loaded once.

Apart from `batch` so that the fork server, which imports this before forking the workers,
loads only the core (numpy, PyAV, Pillow, the face backends) and not what the parent needs
besides (settings, ports, the gallery and metadata stores): ~0.2 s less CPU per batch. The
workers receive plain core records, not `Settings`, for the same reason; what only some
batches need (inputs in a bucket, remembering faces) is imported when a task needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from facereel.core.faces import FaceConfig, FaceModels
from facereel.core.recognize import MediaAnalyzer, PartialAnalysis, RecognizeOptions

if TYPE_CHECKING:
    from facereel.app.batchwork import ItemAnalyzer
    from facereel.app.sources import InputItem
    from facereel.config.sections import StorageSettings

Crops = dict[int, list[tuple[float, str]]]  # track id -> (shot time, crop key)


@dataclass(frozen=True, slots=True)
class Task:
    index: int  # position of the input
    path: str
    start_s: float = 0.0
    end_s: float | None = None
    item: InputItem | None = None  # an input in a bucket: all its windows, by one worker
    window: int = 0  # which window of a local input
    key: str = ""  # the input's key and content hash, when its faces are remembered
    etag: str = ""


@dataclass(slots=True)
class Analysed:
    """What a batch worker hands back: the analysis, and where each track's shots are kept
    (empty when nothing is remembered)."""

    part: PartialAnalysis
    crops: Crops = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AnalyzerSpec:
    """Everything a worker needs to build its analyzer."""

    faces: FaceConfig
    options: RecognizeOptions  # keep_faces set when results show faces
    window_s: float = 60.0
    storage: StorageSettings | None = None  # buckets to read inputs from and keep parts in
    remember: bool = False  # keep each local input's shots as parts (the face memory)


def analyzer_for(spec: AnalyzerSpec) -> Callable[[Task], list[Analysed]]:
    """A worker's handler: loads the models, then analyses one task per call."""
    return _Handler(spec)


class _Handler:
    def __init__(self, spec: AnalyzerSpec) -> None:
        self.spec = spec
        self.analyzer = MediaAnalyzer(FaceModels(spec.faces).load(), spec.options)
        self._buckets: ItemAnalyzer | None = None  # made for the first input in a bucket

    def __call__(self, task: Task) -> list[Analysed]:
        if task.item is not None:
            return [Analysed(part) for part in self.buckets().analyze_all(task.item)]
        if self.spec.remember and task.key:
            return [_remembered(self.analyzer, self.spec, task)]
        return [Analysed(self.analyzer.analyze(Path(task.path), task.start_s, task.end_s))]

    def buckets(self) -> ItemAnalyzer:
        if self._buckets is None:
            from facereel.app.batchwork import ItemAnalyzer

            assert self.spec.storage is not None, "inputs in a bucket need the storage settings"
            self._buckets = ItemAnalyzer(self.analyzer, self.spec.window_s, self.spec.storage)
        return self._buckets


def _remembered(analyzer: MediaAnalyzer, spec: AnalyzerSpec, task: Task) -> Analysed:
    """Analyse a window and keep its shots as a part in the stage-1 bucket."""
    from facereel.core.identify import EmbeddingSink
    from facereel.pipeline.parts import ShotCollector
    from facereel.runtime.batch_memory import TeeSink, store_part

    assert spec.storage is not None, "remembering needs the storage settings"
    embedded = EmbeddingSink(analyzer.models, keep_faces=spec.options.keep_faces)
    kept = ShotCollector()
    part = analyzer.analyze(Path(task.path), task.start_s, task.end_s, TeeSink(embedded, kept))
    part.analysis.faces = embedded.faces
    return Analysed(part, store_part(spec.storage, part, task.key, task.etag, task.window, kept))
