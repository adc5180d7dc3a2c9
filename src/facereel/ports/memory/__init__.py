"""MemoryStore: every face track of every processed video, kept (the face memory).

The source of truth is one record per video content, `VideoMemory`: a row per face track
(known or not) with the embedding of every shot, the crop of each shot, the best crop, the
spans, the person it was matched to, and which models made it. The vector index searches use
is a snapshot built from these records by a single writer (`facereel.memory.indexer`);
nothing here is rewritten by every host.

Contract (every backend, checked by tests/integration/test_ports_contract.py):

- `remember(memory)` stores a video's record in one step, replacing the record of any other
  content (etag) of the same video; the same video and etag again adds nothing (False), so a
  repeated delivery or a re-processed upload never duplicates faces. Concurrent calls for one
  video never leave a mixture of two records.
- `replace(memory)` rewrites a record read at `memory.version` (re-embedding, forgetting some
  tracks); False, changing nothing, when the record changed or went since (read it again).
- `get(video)` the current record, or None. `forget(video)` removes it (False: there was none).
- `changes(after)` the changes (remember, replace, forget) with a sequence number above
  `after`, in order, at most `limit`: what the index writer applies and what a search adds to
  the snapshot it reads (the tail). `horizon()` a number such that every change numbered up to
  it is already visible to `changes` (read it before listing). `prune_changes` drops changes
  numbered up to `upto` and made before `before` (epoch seconds), once a snapshot holds them.
- `videos()` a summary of every record (no vectors); `tracks_of(person)` the (video,
  track_id) of tracks recorded as matched to `person`. Both read everything: admin tools.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from facereel.core.types import FloatArray
from facereel.errors import FacereelError

FORMAT = "facereel-memory/1"
MAX_DIM = 4096
MAX_TRACKS = 100_000  # tracks in one video's record
MAX_SHOTS = 100_000  # shots of one track


class FaceMemoryError(FacereelError):
    """A face memory operation failed, or a record could not be read."""

    code = "memory_error"


@dataclass(frozen=True, slots=True)
class Shot:
    """One embedded shot of a track: when, and the key of its crop in the stage-1 bucket
    (a member of the part object that carried it: `pipeline.parts.face_key`)."""

    at_ms: int
    crop: str


@dataclass(frozen=True, slots=True)
class TrackDetail:
    """What a result document says of a track besides its embeddings, so a result can be
    rebuilt from the memory alone (`memory.relearn`): when it was seen (every analysed frame,
    ms), its unmerged spans on screen (the last is its current run) and its surest
    detection's box and score. Records remembered before it existed have none."""

    seen: list[int]
    spans: list[tuple[int, int]]
    box: tuple[int, int, int, int]
    score: float

    def to_doc(self) -> dict[str, Any]:
        return {"seen": self.seen, "spans": [list(s) for s in self.spans],
                "box": list(self.box), "score": self.score}

    @classmethod
    def from_doc(cls, doc: Any) -> TrackDetail | None:
        if doc is None:
            return None
        box = [int(v) for v in doc["box"]]
        if len(box) != 4 or not doc["spans"]:
            raise ValueError("a track detail needs a box of 4 numbers and spans")
        return cls(seen=[int(t) for t in doc["seen"]],
                   spans=[(int(a), int(b)) for a, b in doc["spans"]],
                   box=(box[0], box[1], box[2], box[3]), score=float(doc["score"]))


@dataclass(slots=True)
class TrackMemory:
    track_id: str  # as the video's result names it (`7`, `7.1`)
    appearances: list[tuple[int, int]]  # (start_ms, end_ms) of each stretch on screen
    face: str  # the crop of its best shot (highest detector score), "" when none was kept
    shots: list[Shot]
    embeddings: FloatArray  # one row per shot, float32
    person: str | None = None  # who recognition matched it to (None: a stranger)
    nearest: str | None = None  # the nearest enrolled person at the time (None: nobody)
    distance: float | None = None  # median distance over the shots to `nearest`
    detail: TrackDetail | None = None  # None in records made before it was kept


@dataclass(slots=True)
class VideoMemory:
    video: str  # the input's key (the absolute path for `facereel recognize` runs)
    etag: str  # which content
    detector: str
    aligner: str
    embedder: str
    tracks: list[TrackMemory] = field(default_factory=list)
    written: float = 0.0  # when it was first remembered (epoch seconds): retention counts it
    version: int = 0  # 0 as remembered; each `replace` adds one

    @property
    def dim(self) -> int:
        return int(self.tracks[0].embeddings.shape[1]) if self.tracks else 0

    @property
    def faces(self) -> int:
        return sum(len(t.shots) for t in self.tracks)

    def to_doc(self) -> dict[str, Any]:
        """A JSON-ready document (embeddings as base64 float32): how a record travels in a
        message and is kept by stores without a binary column."""
        return {"format": FORMAT, "video": self.video, "etag": self.etag,
                "detector": self.detector, "aligner": self.aligner, "embedder": self.embedder,
                "written": self.written, "version": self.version,
                "tracks": [track_doc(t) for t in self.tracks]}

    @classmethod
    def from_doc(cls, doc: Any) -> VideoMemory:
        """A record from `to_doc`'s document, checked field by field (it crossed a queue)."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise FaceMemoryError("not a face memory record", "bad_memory")
        tracks = doc.get("tracks")
        if not isinstance(tracks, list) or len(tracks) > MAX_TRACKS:
            raise FaceMemoryError("a face memory record without a list of tracks", "bad_memory")
        try:
            return cls(video=_text(doc, "video"), etag=_text(doc, "etag"),
                       detector=_text(doc, "detector"), aligner=_text(doc, "aligner"),
                       embedder=_text(doc, "embedder"), written=float(doc.get("written", 0)),
                       version=int(doc.get("version", 0)),
                       tracks=[track_from(t) for t in tracks])
        except (TypeError, ValueError, KeyError) as exc:
            raise FaceMemoryError(f"a malformed face memory record ({exc})", "bad_memory") from exc


@dataclass(frozen=True, slots=True)
class VideoSummary:
    video: str
    etag: str
    version: int
    embedder: str
    written: float
    tracks: int


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    video: str


def encode_vectors(vectors: FloatArray) -> str:
    return base64.b64encode(np.ascontiguousarray(vectors, dtype="<f4").tobytes()).decode()


def decode_vectors(text: str, rows: int) -> FloatArray:
    """`rows` float32 vectors from base64; their dimension follows from the length."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"embeddings are not base64 ({exc})") from exc
    return vectors_from_bytes(raw, rows)


def vectors_from_bytes(raw: bytes, rows: int) -> FloatArray:
    if rows <= 0 or len(raw) % (4 * rows) or not 0 < len(raw) // (4 * rows) <= MAX_DIM:
        raise ValueError(f"{len(raw)} bytes cannot hold {rows} embeddings")
    vectors = np.frombuffer(raw, dtype="<f4").reshape(rows, -1).astype(np.float32)
    if not np.all(np.isfinite(vectors)):
        raise ValueError("embeddings hold NaN or infinite values")
    return vectors


def track_doc(track: TrackMemory) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "track_id": track.track_id, "person": track.person, "nearest": track.nearest,
        "distance": track.distance, "appearances": [list(a) for a in track.appearances],
        "face": track.face, "shots": [[s.at_ms, s.crop] for s in track.shots],
        "embeddings": encode_vectors(track.embeddings)}
    if track.detail is not None:
        doc["detail"] = track.detail.to_doc()
    return doc


def detail_text(detail: TrackDetail | None) -> str | None:
    """A track's detail as stores without a document column keep it (JSON; None: none)."""
    return None if detail is None else json.dumps(detail.to_doc(), separators=(",", ":"))


def detail_of(text: str | None) -> TrackDetail | None:
    return None if not text else TrackDetail.from_doc(json.loads(text))


def track_from(doc: Any) -> TrackMemory:
    if not isinstance(doc, dict):
        raise ValueError("a track that is not an object")
    shots = doc["shots"]
    if not isinstance(shots, list) or not 0 < len(shots) <= MAX_SHOTS:
        raise ValueError("a track needs 1 to 100000 shots")
    distance = doc.get("distance")
    return TrackMemory(
        track_id=_text(doc, "track_id"),
        appearances=[(int(a), int(b)) for a, b in doc["appearances"]],
        face=str(doc.get("face") or ""),
        shots=[Shot(int(at), str(crop)) for at, crop in shots],
        embeddings=decode_vectors(str(doc["embeddings"]), len(shots)),
        person=_optional(doc, "person"), nearest=_optional(doc, "nearest"),
        distance=None if distance is None else float(distance),
        detail=TrackDetail.from_doc(doc.get("detail")))


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _optional(doc: dict[str, Any], name: str) -> str | None:
    value = doc.get(name)
    return None if value is None else str(value)


class MemoryStore(Protocol):
    def describe(self) -> str: ...

    def remember(self, memory: VideoMemory) -> bool: ...

    def replace(self, memory: VideoMemory) -> bool: ...

    def get(self, video: str) -> VideoMemory | None: ...

    def forget(self, video: str) -> bool: ...

    def changes(self, after: int, limit: int = 1000) -> list[Change]: ...

    def horizon(self) -> int: ...

    def prune_changes(self, upto: int, before: float) -> int: ...

    def videos(self) -> Iterator[VideoSummary]: ...

    def tracks_of(self, person: str) -> list[tuple[str, str]]: ...
