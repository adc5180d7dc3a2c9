"""The gallery of enrolled people: vectors from one embedder, saved as one `.npz` file.

The file holds a `vectors` float32 array and a UTF-8 JSON `header` (stored as bytes, so loading
never needs pickle) recording the format version, the embedder that made the vectors, their
dimension and one name per vector. Vectors from different embedders live in different spaces, so
mixing them is refused instead of silently producing meaningless distances.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facereel.core.types import FloatArray
from facereel.errors import GalleryError

FORMAT = "facereel-gallery"
VERSION = 1
MAX_NPZ_MEMBER = 1 << 30


def _checked_header(header: object, source: str) -> tuple[str, int, list[str]]:
    """(embedder, dim, names) of a gallery file's header, or a clear error."""
    if not isinstance(header, dict) or header.get("format") != FORMAT \
            or header.get("version") != VERSION:
        raise GalleryError(f"{source} is not a facereel gallery (format/version mismatch)")
    embedder, dim, names = header.get("embedder"), header.get("dim"), header.get("names")
    if not isinstance(embedder, str) or not isinstance(dim, int) or not 0 < dim <= 4096 \
            or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise GalleryError(f"{source} is not a facereel gallery (malformed header)")
    return embedder, dim, names


@dataclass
class Gallery:
    embedder: str
    dim: int
    names: list[str] = field(default_factory=list)
    vectors: FloatArray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))

    def __post_init__(self) -> None:
        if self.vectors.size == 0:
            self.vectors = np.zeros((0, self.dim), dtype=np.float32)
        self._check(self.vectors, self.embedder, len(self.names))

    # ---- contents -------------------------------------------------------------------------
    @property
    def people(self) -> list[str]:
        """Enrolled names, each once, in enrolment order."""
        return list(dict.fromkeys(self.names))

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name in self.names:
            counts[name] = counts.get(name, 0) + 1
        return counts

    def __len__(self) -> int:
        return len(self.names)

    def add(self, name: str, vectors: FloatArray, embedder: str | None = None) -> None:
        """Enrol `vectors` (k x dim) under `name`; `embedder` must match when given."""
        name = name.strip()
        if not name:
            raise GalleryError("a person needs a non-empty name")
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        self._check(vectors, embedder or self.embedder, len(vectors))
        self.vectors = np.vstack([self.vectors, vectors])
        self.names.extend([name] * len(vectors))

    def remove(self, name: str) -> int:
        keep = [i for i, n in enumerate(self.names) if n != name]
        removed = len(self.names) - len(keep)
        self.names = [self.names[i] for i in keep]
        self.vectors = self.vectors[keep]
        return removed

    def merge(self, other: Gallery) -> int:
        """Add the other gallery's people; vectors this gallery already holds for the same
        person are skipped, so importing a file twice changes nothing. Returns vectors added."""
        added = 0
        for name in other.people:
            mine = self.vectors[[i for i, n in enumerate(self.names) if n == name]]
            rows = [i for i, n in enumerate(other.names) if n == name
                    and not any(np.array_equal(other.vectors[i], v) for v in mine)]
            if rows:
                self.add(name, other.vectors[rows], other.embedder)
                added += len(rows)
        return added

    def without(self, name: str) -> Gallery:
        """A copy with one person left out (open-set checks)."""
        copy = Gallery(self.embedder, self.dim, list(self.names), self.vectors.copy())
        copy.remove(name)
        return copy

    # ---- matching -------------------------------------------------------------------------
    def person_distances(self, queries: FloatArray) -> FloatArray:
        """Q x P matrix: each query's distance to each person (nearest of their vectors)."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        people = self.people
        if queries.shape[1] != self.dim:
            raise GalleryError(
                f"query vectors have {queries.shape[1]} dimensions, gallery has {self.dim}"
            )
        if not people:
            return np.zeros((len(queries), 0), dtype=np.float32)
        diff = queries[:, None, :] - self.vectors[None, :, :]
        dist = np.sqrt(np.einsum("qnd,qnd->qn", diff, diff))
        index = {name: i for i, name in enumerate(people)}
        columns = np.array([index[n] for n in self.names])
        out = np.full((len(queries), len(people)), np.inf, dtype=np.float32)
        for column in range(len(people)):
            out[:, column] = dist[:, columns == column].min(axis=1)
        return out

    # ---- persistence ----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The `.npz` file's bytes (a JSON header and the vectors; no pickle)."""
        header = {
            "format": FORMAT,
            "version": VERSION,
            "embedder": self.embedder,
            "dim": self.dim,
            "names": self.names,
        }
        raw = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, header=raw, vectors=self.vectors.astype(np.float32))
        return buffer.getvalue()

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename), so a crash never leaves half a gallery."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".gallery-", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.to_bytes())
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Gallery:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise GalleryError(f"gallery {path} does not exist", "gallery_not_found") from exc
        except OSError as exc:
            raise GalleryError(f"cannot read gallery {path}: {exc.strerror}") from exc
        return cls.from_bytes(data, str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> Gallery:
        """A gallery from its `.npz` bytes, every part of it checked before use: a header that
        is not the expected object, or members claiming more than `MAX_NPZ_MEMBER` bytes,
        are refused with a clear error (never an AttributeError or a MemoryError)."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                sizes = {info.filename: info.file_size for info in archive.infolist()}
            if any(size > MAX_NPZ_MEMBER for size in sizes.values()):
                raise GalleryError(f"{source}: a member unpacks to more than {MAX_NPZ_MEMBER} "
                                   "bytes", "too_large")
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                header = json.loads(bytes(archive["header"]).decode("utf-8"))
                vectors = np.asarray(archive["vectors"], dtype=np.float32)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise GalleryError(f"{source} is not a facereel gallery ({exc})") from exc
        return cls(*_checked_header(header, source), vectors)

    def _check(self, vectors: FloatArray, embedder: str, count: int) -> None:
        if embedder != self.embedder:
            raise GalleryError(
                f"vectors made by '{embedder}' cannot join a gallery of '{self.embedder}' "
                "vectors: different models give incomparable vectors",
                "embedder_mismatch",
            )
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise GalleryError(
                f"vectors of shape {vectors.shape} do not fit a {self.dim}-d "
                f"'{self.embedder}' gallery",
                "embedder_mismatch",
            )
        if count != len(vectors):
            raise GalleryError("gallery names and vectors differ in number")
        if not np.all(np.isfinite(vectors)):
            raise GalleryError("gallery vectors contain NaN or infinite values")
