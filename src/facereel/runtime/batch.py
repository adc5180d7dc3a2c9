"""Recognise many inputs with a pool of worker processes (or in-process for one worker)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from facereel.config import Settings
from facereel.core.results import VideoResult, error_result
from facereel.core.sniff import MEDIA_EXTENSIONS
from facereel.runtime.context import build_recognizer
from facereel.runtime.pool import TaskFailure, WorkerPool

ResultCallback = Callable[[int, VideoResult], None]


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


def _recognizer_handler(settings: Settings) -> Callable[[str], VideoResult]:
    recognizer = build_recognizer(settings)

    def handle(path: str) -> VideoResult:
        return recognizer.recognize(Path(path))

    return handle


def _failure_result(path: Path, failure: TaskFailure) -> VideoResult:
    code = {"crashed": "worker_crashed", "timeout": "timeout"}.get(failure.reason, "internal_error")
    return error_result(path.name, code, f"{path.name}: {failure.message}")


def recognize_paths(paths: list[Path], settings: Settings) -> Iterator[tuple[int, VideoResult]]:
    """Yield `(input index, result)` as results finish; one result per input, always."""
    workers = min(settings.worker_count, len(paths))
    if workers <= 1:
        handle = _recognizer_handler(settings)
        for index, path in enumerate(paths):
            yield index, handle(str(path))
        return
    pool: WorkerPool[str, VideoResult] = WorkerPool(
        workers, _recognizer_handler, settings, timeout_s=settings.item_timeout
    )
    for index, outcome in pool.run(str(p) for p in paths):
        if isinstance(outcome, TaskFailure):
            yield index, _failure_result(paths[index], outcome)
        else:
            yield index, outcome


def in_order(results: Iterator[tuple[int, VideoResult]]) -> Iterator[tuple[int, VideoResult]]:
    """Re-order `(index, result)` pairs into input order, releasing each as soon as it can."""
    waiting: dict[int, VideoResult] = {}
    expected = 0
    for index, result in results:
        waiting[index] = result
        while expected in waiting:
            yield expected, waiting.pop(expected)
            expected += 1
