"""The face index snapshot: every remembered shot's vector in a vector index, the videos it
holds, and the change number (`cursor`) up to which it reflects the memory.

It is written by a single writer (`memory.indexer`) as one stage-1 object,
`memory-index/snapshot.zip`, with a conditional write (another writer's snapshot is never
overwritten unseen); searches read it and add the memory's changes since `cursor` (the tail).
Each video's shots get a block of consecutive ids, so a video is removed by its range and an
id's video is found by a binary search.

    snapshot.json   {"format", "embedder", "dim", "cursor", "next_id",
                     "videos": [[video, etag, version, written, first_id, count], ...],
                     "applied": [[seq, video], ...]}

`applied` lists the changes numbered above `cursor` the snapshot already reflects (a writer
reads changes past the memory's horizon too): a search leaves those out of its tail, so the
tail holds only what the snapshot lacks.
    index.zip       the vector index (`memory.vectors.index_to_bytes`)
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from facereel.core.index import AutoIndex
from facereel.memory.vectors import (
    IndexDataError,
    index_from_bytes,
    index_to_bytes,
    new_index,
)
from facereel.ports.memory import VideoMemory
from facereel.ports.objectstore import ObjectNotFoundError, ObjectStore

FORMAT = "facereel-memory-index/1"
SNAPSHOT_KEY = "memory-index/snapshot.zip"
MAX_HEADER_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class Indexed:
    """A video as the snapshot holds it: which record, and its block of ids."""

    etag: str
    version: int
    written: float
    first: int
    count: int  # 0: a record of another embedder (awaiting `memory reembed`) or no faces


@dataclass
class Snapshot:
    embedder: str
    dim: int
    cursor: int = 0
    next_id: int = 0
    videos: dict[str, Indexed] = field(default_factory=dict)
    applied: set[tuple[int, str]] = field(default_factory=set)  # changes above `cursor`
    index: AutoIndex = field(init=False)
    _lookup: tuple[npt.NDArray[np.int64], list[str]] | None = field(default=None, init=False,
                                                                    repr=False)

    def __post_init__(self) -> None:
        self.index = new_index(self.dim)

    def drop(self, video: str) -> None:
        held = self.videos.pop(video, None)
        if held is not None and held.count:
            self.index.remove(np.arange(held.first, held.first + held.count))
        self._lookup = None

    def add(self, memories: list[VideoMemory]) -> int:
        """Index the records' shots (records of another embedder are listed, not indexed);
        answers how many vectors were added."""
        ids, blocks = [], []
        for memory in memories:
            self.drop(memory.video)
            vectors = [t.embeddings for t in memory.tracks] \
                if memory.embedder == self.embedder and memory.dim == self.dim else []
            count = sum(len(v) for v in vectors)
            self.videos[memory.video] = Indexed(memory.etag, memory.version, memory.written,
                                                self.next_id, count)
            if count:
                ids.append(np.arange(self.next_id, self.next_id + count))
                blocks.extend(vectors)
            self.next_id += count
        if ids:
            self.index.add(np.concatenate(ids), np.vstack(blocks))
        return sum(len(i) for i in ids)

    def videos_of(self, ids: npt.NDArray[np.int64]) -> set[str]:
        """The videos holding these ids (ids of no video, -1 included, are left out)."""
        if self._lookup is None:
            blocks = sorted((v.first, name) for name, v in self.videos.items() if v.count)
            self._lookup = (np.array([f for f, _ in blocks], dtype=np.int64),
                            [name for _, name in blocks])
        firsts, names = self._lookup
        found = set()
        for where, id_ in zip(np.searchsorted(firsts, ids, side="right") - 1, ids,
                              strict=True):
            if where >= 0 and id_ >= 0:
                name = names[where]
                held = self.videos[name]
                if id_ < held.first + held.count:
                    found.add(name)
        return found

    # ---- persistence ----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        header = {"format": FORMAT, "embedder": self.embedder, "dim": self.dim,
                  "cursor": self.cursor, "next_id": self.next_id,
                  "videos": [[name, v.etag, v.version, v.written, v.first, v.count]
                             for name, v in sorted(self.videos.items())],
                  "applied": sorted([seq, video] for seq, video in self.applied)}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("snapshot.json", json.dumps(header))
            archive.writestr("index.zip", index_to_bytes(self.index))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Snapshot:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if archive.getinfo("snapshot.json").file_size > MAX_HEADER_BYTES:
                    raise IndexDataError("the snapshot's header is too large")
                header = json.loads(archive.read("snapshot.json"))
                if not isinstance(header, dict) or header.get("format") != FORMAT:
                    raise IndexDataError("not a face index snapshot")
                snapshot = cls(str(header["embedder"]), int(header["dim"]),
                               int(header["cursor"]), int(header["next_id"]))
                snapshot.videos = {str(n): Indexed(str(e), int(ver), float(w), int(f), int(c))
                                   for n, e, ver, w, f, c in header["videos"]}
                snapshot.applied = {(int(seq), str(video))
                                    for seq, video in header.get("applied", [])}
                snapshot.index = index_from_bytes(archive.read("index.zip"), snapshot.dim)
        except (zipfile.BadZipFile, KeyError, TypeError, ValueError) as exc:
            raise IndexDataError(f"unreadable face index snapshot ({exc})") from exc
        return snapshot


def load_snapshot(store: ObjectStore) -> tuple[Snapshot | None, str]:
    """The stored snapshot and its etag (None and "" when there is none yet)."""
    try:
        data, info = store.fetch(SNAPSHOT_KEY)
    except ObjectNotFoundError:
        return None, ""
    return Snapshot.from_bytes(data), info.etag


def save_snapshot(store: ObjectStore, snapshot: Snapshot, based_on: str) -> str:
    """Write the snapshot if the stored one is still `based_on` (its etag; "" = none);
    PreconditionFailedError otherwise. Answers the new etag."""
    info = store.put_bytes(SNAPSHOT_KEY, snapshot.to_bytes(), content_type="application/zip",
                           expect=based_on)
    return info.etag
