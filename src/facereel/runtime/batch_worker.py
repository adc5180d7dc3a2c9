"""What a batch's worker processes run: one analysis at a time, with the models loaded once.

Apart from `batch` so that the fork server, which imports this before forking the workers,
loads only the core (numpy, PyAV, Pillow, the face backends) and not what the parent needs
besides (settings, ports, the gallery and metadata stores): ~0.2 s less CPU per batch. The
workers receive plain core records, not `Settings`, for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from facereel.core.faces import FaceConfig, FaceModels
from facereel.core.recognize import MediaAnalyzer, PartialAnalysis, RecognizeOptions


@dataclass(frozen=True, slots=True)
class Task:
    index: int  # position of the input
    path: str
    start_s: float = 0.0
    end_s: float | None = None


@dataclass(frozen=True, slots=True)
class AnalyzerSpec:
    """Everything a worker needs to build its analyzer."""

    faces: FaceConfig
    options: RecognizeOptions


def analyzer_for(spec: AnalyzerSpec) -> Callable[[Task], PartialAnalysis]:
    """A worker's handler: loads the models, then analyses one task per call."""
    analyzer = MediaAnalyzer(FaceModels(spec.faces).load(), spec.options)

    def handle(task: Task) -> PartialAnalysis:
        return analyzer.analyze(Path(task.path), task.start_s, task.end_s)

    return handle
