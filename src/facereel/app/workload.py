"""`facereel workload`: upload videos to the input bucket with a given concurrency, like the
coursework's workload generator, and report the upload rate.

A file whose name would make an invalid object key is refused at the door: it gets an error
record in the output bucket (and a metadata row), so every upload ends as exactly one record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from facereel.core.results import error_result
from facereel.pipeline.publishing import publish_result
from facereel.pipeline.wiring import Ports
from facereel.ports.objectstore import ObjectStoreError, key_problem, md5_hex


@dataclass(slots=True)
class UploadReport:
    uploaded: int = 0
    refused: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.uploaded / self.seconds if self.seconds > 0 else 0.0


def refuse(ports: Ports, key: str, problem: str, data: bytes = b"") -> None:
    """Record an upload that cannot be accepted as one error result."""
    name = key.rsplit("/", 1)[-1] or key
    result = error_result(name, "invalid_key", f"{key!r}: invalid object key: {problem}")
    publish_result(ports, key, md5_hex(data) if data else "", result)


def plan_keys(files: list[Path], count: int | None, prefix: str = "") -> list[tuple[str, Path]]:
    """(key, file) for `count` uploads cycling through `files`: the first round keeps the
    files' names, later rounds add `-r<round>` before the extension, so every upload gets its
    own key (a cycled upload never overwrites an earlier one)."""
    total = len(files) if count is None else count
    items = []
    for index in range(total):
        path = files[index % len(files)]
        lap = index // len(files)
        name = path.name if lap == 0 else f"{path.stem}-r{lap}{path.suffix}"
        items.append((f"{prefix}{name}", path))
    return items


def upload(ports: Ports, items: list[tuple[str, Path]], concurrency: int,
           progress: Callable[[int], None] | None = None) -> UploadReport:
    """Upload (key, file) pairs with `concurrency` parallel uploads."""
    report = UploadReport()
    started = time.perf_counter()

    def one(item: tuple[str, Path]) -> tuple[str, int, str]:
        key, path = item
        problem = key_problem(key)
        if problem is not None:
            refuse(ports, key, problem)
            return key, 0, "refused"
        try:
            return key, ports.input.put_file(key, path).size, ""
        except ObjectStoreError as exc:
            return key, 0, exc.message

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for done, (key, size, problem) in enumerate(pool.map(one, items), 1):
            if problem == "refused":
                report.refused += 1
            elif problem:
                report.failed.append((key, problem))
            else:
                report.uploaded += 1
                report.bytes += size
            if progress is not None:
                progress(done)
    report.seconds = time.perf_counter() - started
    return report
