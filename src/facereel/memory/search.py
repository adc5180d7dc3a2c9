"""Search the past: every remembered face track within the threshold of a person (their gallery
vectors) or of a photo's face, best first, from stored embeddings only (no video is opened).

A track's distance is the one recognition uses (`core.match`): for each of its shots the
distance to the nearest query vector, then the median over the shots. A track can only be
within the threshold if one of its shots is (the median is at least the smallest), so the
index snapshot is asked for every shot within the threshold (k nearest, k grown until the
k-th is farther), and the videos holding them are read from the memory with the videos
changed since the snapshot (its tail): every candidate is then decided exactly on its
current record. Without a snapshot (the index writer never ran) every record is read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from facereel.core.gallery import Gallery
from facereel.core.match import similarity
from facereel.core.types import FloatArray
from facereel.memory.snapshot import SNAPSHOT_KEY, Snapshot, load_snapshot
from facereel.ports.memory import MemoryStore, TrackMemory, VideoMemory
from facereel.ports.objectstore import ObjectStore

FIRST_K = 64
RADIUS_SLACK = 1e-3  # rounding of the index's distances: candidates are decided exactly later
QUERY = "query"


@dataclass(frozen=True, slots=True)
class Match:
    video: str
    etag: str
    track_id: str
    appearances: list[tuple[int, int]]
    distance: float
    face: str  # the track's best crop (a stage-1 key, served by GET /v1/faces/{key})

    @property
    def similarity(self) -> float:
        return round(similarity(self.distance), 3)

    def to_dict(self) -> dict[str, object]:
        return {"video": self.video, "etag": self.etag, "track_id": self.track_id,
                "appearances": [{"start_ms": s, "end_ms": e} for s, e in self.appearances],
                "similarity": self.similarity, "distance": round(self.distance, 4),
                "face": self.face}


def track_distance(track: TrackMemory, queries: Gallery) -> float:
    """Median over the track's shots of the distance to the nearest query vector: exactly
    how matching measures a track against one person."""
    return float(np.median(queries.person_distances(track.embeddings)[:, 0]))


class Searcher:
    """Searches one memory; keeps the last snapshot read, re-read when its version changes."""

    def __init__(self, memory: MemoryStore, objects: ObjectStore, embedder: str,
                 dim: int) -> None:
        self.memory, self.objects = memory, objects
        self.embedder, self.dim = embedder, dim
        self._cached: tuple[str, Snapshot | None] = ("", None)
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot | None:
        info = self.objects.head(SNAPSHOT_KEY)
        with self._lock:
            if info is None:
                self._cached = ("", None)
            elif info.etag != self._cached[0]:
                snapshot, etag = load_snapshot(self.objects)
                self._cached = (etag, snapshot)
            return self._cached[1]

    def search(self, queries: FloatArray, threshold: float,
               limit: int | None = None) -> list[Match]:
        """Every remembered track within `threshold` of the query vectors, best first."""
        gallery = Gallery(self.embedder, self.dim, [QUERY] * len(queries),
                          np.asarray(queries, dtype=np.float32))
        matches = [match for record in self._candidates(gallery, threshold)
                   for match in _matches(record, gallery, threshold)]
        matches.sort(key=lambda m: (m.distance, m.video, m.track_id))
        return matches if limit is None else matches[:limit]

    def videos_near(self, vectors: FloatArray, radius: float) -> list[str]:
        """The videos that may hold a shot within `radius` of one of `vectors`: those the
        snapshot finds, and every video it does not reflect yet (all, without a snapshot)."""
        snapshot = self.snapshot()
        if snapshot is None or (snapshot.embedder, snapshot.dim) != (self.embedder, self.dim):
            return [v.video for v in self.memory.videos() if v.embedder == self.embedder]
        near = _within(snapshot, np.asarray(vectors, dtype=np.float32), radius + RADIUS_SLACK)
        return sorted(snapshot.videos_of(near) | tail(self.memory, snapshot))

    def _candidates(self, queries: Gallery, threshold: float) -> Iterator[VideoMemory]:
        for name in self.videos_near(queries.vectors, threshold):
            record = self.memory.get(name)
            if record is not None and record.embedder == self.embedder:
                yield record


def changes_since(memory: MemoryStore, after: int) -> set[tuple[int, str]]:
    """(seq, video) of every change numbered above `after`."""
    found: set[tuple[int, str]] = set()
    while changes := memory.changes(after):
        found |= {(c.seq, c.video) for c in changes}
        after = changes[-1].seq
    return found


def tail(memory: MemoryStore, snapshot: Snapshot) -> set[str]:
    """The videos changed in ways the snapshot does not reflect."""
    return {video for _, video in changes_since(memory, snapshot.cursor) - snapshot.applied}


def _within(snapshot: Snapshot, queries: FloatArray, radius: float) -> np.ndarray:
    """Ids of every indexed vector within `radius` of some query."""
    size = len(snapshot.index)
    k = min(FIRST_K, size)
    while k:
        found = snapshot.index.search(queries, k)
        if k >= size or not np.any(found.distances[:, -1] <= radius):
            return np.unique(found.ids[found.distances <= radius])
        k = min(size, k * 4)
    return np.zeros(0, dtype=np.int64)


def _matches(record: VideoMemory, queries: Gallery, threshold: float) -> Iterator[Match]:
    """The record's tracks within the threshold. Every shot's distance is computed at once
    (each row exactly as `track_distance` computes it); a track none of whose shots is within
    the threshold cannot be, so only the others take a median."""
    tracks = [t for t in record.tracks if t.embeddings.shape[1] == queries.dim]
    if not tracks:
        return
    shots = queries.person_distances(np.vstack([t.embeddings for t in tracks]))[:, 0]
    start = 0
    for track in tracks:
        mine = shots[start:start + len(track.embeddings)]
        start += len(track.embeddings)
        if mine.min() > threshold:
            continue
        distance = float(np.median(mine))
        if distance <= threshold:
            yield Match(record.video, record.etag, track.track_id, track.appearances,
                        distance, track.face)
