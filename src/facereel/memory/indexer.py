"""The face index's single writer: brings the snapshot up to date with the memory, and applies
retention. `facereel memory index` runs it once; `facereel up` every `memory_index_interval`
seconds; on AWS a scheduled function with a reserved concurrency of 1.

Incremental: it reads the changes since the snapshot's cursor (taking the memory's horizon
first, so every change up to it is among them), re-indexes each changed video from its
current record (a forgotten one is dropped), and saves the snapshot with a conditional write:
if another writer saved one meanwhile, this run changes nothing and says so. Without a usable
snapshot (the first run, a deleted or damaged one, a new embedder) it rebuilds from every
record, since old changes are pruned once a snapshot holds them.

Retention (`memory_retention_days`, 0 = forever): videos remembered longer ago are forgotten
(their records and stage-1 crops, as `facereel forget --video` does).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

from facereel.errors import FacereelError
from facereel.memory.forget import forget_video
from facereel.memory.search import changes_since
from facereel.memory.snapshot import SNAPSHOT_KEY, Snapshot, load_snapshot, save_snapshot
from facereel.memory.vectors import IndexDataError
from facereel.ports.memory import MemoryStore
from facereel.ports.objectstore import ObjectStore, PreconditionFailedError

log = logging.getLogger(__name__)
# changes a snapshot holds are kept this long, for searches still reading an older snapshot
PRUNE_AFTER_S = 3600.0
DAY_S = 86400.0
ADD_BATCH = 512


@dataclass(slots=True)
class IndexReport:
    rebuilt: bool = False
    changed: int = 0  # videos re-indexed or dropped
    expired: int = 0  # videos forgotten by retention
    vectors: int = 0  # vectors in the index now
    videos: int = 0
    cursor: int = 0
    pruned: int = 0  # changes pruned from the memory's feed
    groups: int = 0  # groups of strangers after regrouping (`memory.strangers`)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def update_index(memory: MemoryStore, objects: ObjectStore, embedder: str, dim: int,
                 retention_days: float = 0.0, now: float | None = None) -> IndexReport:
    started = time.perf_counter()
    now = time.time() if now is None else now
    report = IndexReport()
    snapshot, etag = _current(objects, embedder, dim)
    horizon = memory.horizon()
    if snapshot is None:
        snapshot, report.rebuilt = Snapshot(embedder, dim), True
        changed = {v.video for v in memory.videos()}
        seen = changes_since(memory, horizon)
    else:
        seen = changes_since(memory, snapshot.cursor)
        changed = {video for _, video in seen}
    _reindex(memory, snapshot, sorted(changed | {video for _, video in seen}))
    report.changed = len(changed)
    if retention_days > 0:
        report.expired = _expire(memory, objects, snapshot, now - retention_days * DAY_S)
    snapshot.cursor = max(snapshot.cursor, horizon)
    # what it read past the horizon it reflects: searches need not read those again
    snapshot.applied = {(seq, video) for seq, video in seen if seq > snapshot.cursor}
    try:
        save_snapshot(objects, snapshot, etag)
    except PreconditionFailedError as exc:
        raise FacereelError("another index writer saved the face index meanwhile; nothing "
                            "was changed (run it again)", "index_conflict") from exc
    report.pruned = memory.prune_changes(snapshot.cursor, now - PRUNE_AFTER_S)
    report.vectors, report.videos = len(snapshot.index), len(snapshot.videos)
    report.cursor, report.seconds = snapshot.cursor, round(time.perf_counter() - started, 3)
    log.info("face index updated", extra=report.to_dict())
    return report


def _reindex(memory: MemoryStore, snapshot: Snapshot, videos: list[str]) -> None:
    """Each video's shots from its current record (none: dropped), added in batches (one
    index insertion per batch, while holding a bounded number of records)."""
    batch = []
    for video in videos:
        snapshot.drop(video)
        record = memory.get(video)
        if record is not None:
            batch.append(record)
        if len(batch) >= ADD_BATCH:
            snapshot.add(batch)
            batch = []
    snapshot.add(batch)


def _current(objects: ObjectStore, embedder: str, dim: int) -> tuple[Snapshot | None, str]:
    """The stored snapshot when it can be updated (None: rebuild) and its etag."""
    try:
        snapshot, etag = load_snapshot(objects)
    except IndexDataError as exc:
        log.warning("the face index snapshot is unreadable (%s): rebuilding it", exc)
        info = objects.head(SNAPSHOT_KEY)
        return None, info.etag if info is not None else ""
    if snapshot is not None and (snapshot.embedder, snapshot.dim) != (embedder, dim):
        log.warning("the face index holds %s vectors; rebuilding it for %s",
                    snapshot.embedder, embedder)
        return None, etag
    return snapshot, etag


def _expire(memory: MemoryStore, objects: ObjectStore, snapshot: Snapshot,
            before: float) -> int:
    old = [video for video, held in snapshot.videos.items() if held.written < before]
    for video in old:
        try:
            forget_video(memory, objects, video)
        except FacereelError as exc:
            if exc.code != "not_found":
                raise
        snapshot.drop(video)
    return len(old)
