"""The gallery of enrolled people: vectors from one embedder, saved as one `.npz` file.

The file holds a `vectors` float32 array and a UTF-8 JSON `header` (stored as bytes, so loading
never needs pickle) recording the format version, the embedder that made the vectors, their
dimension and one name per vector. Vectors from different embedders live in different spaces, so
mixing them is refused instead of silently producing meaningless distances.

Galleries of a million faces are matched through a nearest-neighbour index (core/index) built
on first use: each query's CANDIDATES nearest vectors name the people worth comparing, and only
their vectors are compared exactly. What the names imply (the people, their counts, each
person's rows) is computed once per version of the gallery, not per call.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facereel.core.index import ExactIndex, VectorIndex, build_index
from facereel.core.index.distances import euclidean
from facereel.core.types import FloatArray
from facereel.errors import GalleryError

FORMAT = "facereel-gallery"
VERSION = 1
MAX_NPZ_MEMBER = 1 << 30
# Matching re-ranks, by person, the index's CANDIDATES nearest vectors of each query; a gallery
# of at most FULL_COMPARISON vectors is compared whole (as cheap, and every person is seen).
CANDIDATES = 32
FULL_COMPARISON = 4096


def _checked_header(header: object, source: str) -> tuple[str, int, list[str]]:
    """(embedder, dim, names) of a gallery file's header, or a clear error."""
    if not isinstance(header, dict) or header.get("format") != FORMAT \
            or header.get("version") != VERSION:
        raise GalleryError(f"{source} is not a facereel gallery (format/version mismatch)")
    embedder, dim, names = header.get("embedder"), header.get("dim"), header.get("names")
    if not isinstance(embedder, str) or not isinstance(dim, int) or not 0 < dim <= 4096 \
            or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise GalleryError(f"{source} is not a facereel gallery (malformed header)")
    # one name per vector: a million faces of 100k people would otherwise be a million strings
    canonical: dict[str, str] = {}
    return embedder, dim, [canonical.setdefault(name, name) for name in names]


@dataclass(frozen=True, slots=True)
class PersonDistances:
    """Each query's distance to each candidate person (to that person's nearest vector)."""

    people: list[str]  # the candidates, in enrolment order
    distances: FloatArray  # Q x len(people), exact
    beyond: FloatArray  # per query: any person not listed is at least this far (inf: none is)
    k: int  # vectors per query the candidates were drawn from (a wider search starts above)
    exact: bool  # whether they come from an exact search (else `beyond` is approximate)


@dataclass(slots=True)
class _Derived:
    """What one version of the gallery implies, computed once: the people, each vector's
    person (`labels`), the rows grouped by person (`order` from `starts[p]` to `starts[p+1]`)
    and, once something is searched, the index. It belongs to the `names` and `vectors`
    objects it was made from: every change replaces `vectors`, which retires it."""

    names: list[str]
    vectors: FloatArray
    people: list[str]
    position: dict[str, int]
    labels: npt.NDArray[np.int64]
    order: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]
    lock: threading.Lock = field(default_factory=threading.Lock)
    index: VectorIndex | None = None
    exact_index: VectorIndex | None = None

    def current(self, names: list[str], vectors: FloatArray) -> bool:
        return self.names is names and self.vectors is vectors and len(names) == len(vectors)

    def rows(self, label: int) -> npt.NDArray[np.int64]:
        return self.order[self.starts[label]:self.starts[label + 1]]


def _derive(names: list[str], vectors: FloatArray) -> _Derived:
    position: dict[str, int] = {}
    for name in names:
        position.setdefault(name, len(position))
    labels = np.fromiter((position[n] for n in names), dtype=np.int64, count=len(names))
    counts = np.bincount(labels, minlength=len(position))
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return _Derived(names, vectors, list(position), position, labels,
                    np.argsort(labels, kind="stable"), starts)


@dataclass
class Gallery:
    """Enrolled people's vectors. Change it through its methods (they replace `vectors`, which
    is what tells the cached people and index that they are out of date)."""

    embedder: str
    dim: int
    names: list[str] = field(default_factory=list)
    vectors: FloatArray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    _cache: _Derived | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.vectors.size == 0:
            self.vectors = np.zeros((0, self.dim), dtype=np.float32)
        self._check(self.vectors, self.embedder, len(self.names))

    def __getstate__(self) -> dict[str, object]:
        # the index is a library object and the lock cannot be pickled: both are rebuilt
        return {**self.__dict__, "_cache": None}

    def _state(self) -> _Derived:
        if self._cache is None or not self._cache.current(self.names, self.vectors):
            self._cache = _derive(self.names, self.vectors)
        return self._cache

    # ---- contents -------------------------------------------------------------------------
    @property
    def people(self) -> list[str]:
        """Enrolled names, each once, in enrolment order."""
        return list(self._state().people)

    def counts(self) -> dict[str, int]:
        state = self._state()
        return dict(zip(state.people, np.diff(state.starts).tolist(), strict=True))

    def vectors_of(self, name: str) -> FloatArray:
        """`name`'s gallery vectors (none for someone not enrolled)."""
        state = self._state()
        label = state.position.get(name)
        if label is None:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self.vectors[state.rows(label)], dtype=np.float32)

    def __len__(self) -> int:
        return len(self.names)

    def add(self, name: str, vectors: FloatArray, embedder: str | None = None) -> None:
        """Enrol `vectors` (k x dim) under `name`; `embedder` must match when given."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        self.extend([name] * len(vectors), vectors, embedder)

    def extend(self, names: list[str], vectors: FloatArray, embedder: str | None = None) -> None:
        """Enrol many vectors at once, one name each (one copy of the gallery, however many
        people: adding them one by one would copy it once per person)."""
        names = [name.strip() for name in names]
        if not all(names):
            raise GalleryError("a person needs a non-empty name")
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        self._check(vectors, embedder or self.embedder, len(names))
        self.vectors = np.vstack([self.vectors, vectors])
        self.names = self.names + names

    def remove(self, name: str) -> int:
        state = self._state()
        if name not in state.position:
            return 0
        keep = state.labels != state.position[name]
        self.names = [n for n in self.names if n != name]
        self.vectors = self.vectors[keep]
        return len(keep) - int(keep.sum())

    def merge(self, other: Gallery) -> int:
        """Add the other gallery's people; vectors this gallery already holds for the same
        person are skipped, so importing a file twice changes nothing. Returns vectors added."""
        mine, theirs = self._state(), other._state()
        names: list[str] = []
        rows: list[int] = []
        for label, name in enumerate(theirs.people):
            held = ({self.vectors[r].tobytes() for r in mine.rows(mine.position[name])}
                    if name in mine.position else set())
            new = [r for r in theirs.rows(label).tolist()
                   if other.vectors[r].tobytes() not in held]
            rows.extend(new)
            names.extend([name] * len(new))
        if rows:
            self.extend(names, other.vectors[rows], other.embedder)
        return len(rows)

    def without(self, name: str) -> Gallery:
        """A copy with one person left out (open-set checks)."""
        copy = Gallery(self.embedder, self.dim, list(self.names), self.vectors.copy())
        copy.remove(name)
        return copy

    # ---- matching -------------------------------------------------------------------------
    def index(self, exact: bool = False) -> VectorIndex:
        """The nearest-neighbour index of the vectors (ids are row numbers): built on first
        use (exact for small galleries, approximate for large ones, or exact when asked) and
        kept with this version of the gallery."""
        state = self._state()
        with state.lock:  # two threads matching at once build it once
            if state.index is None:
                state.index = build_index(self.vectors)
            if exact and not state.index.exact and state.exact_index is None:
                state.exact_index = ExactIndex.of(self.vectors)  # shares the vectors
            return state.exact_index if exact and state.exact_index else state.index

    def nearest_people(self, queries: FloatArray, exclude: str | None = None,
                       k: int = CANDIDATES, exact: bool = False) -> PersonDistances:
        """The people owning any query's `k` nearest vectors (`exact`ly found, or by the
        index), `exclude` left out, with every query's exact distance to each of them; a
        gallery of at most FULL_COMPARISON vectors answers every person. `beyond` bounds
        everyone else, so a caller can tell whether a wider search could change its answer."""
        queries = self._queries(queries)
        state = self._state()
        skip = state.position.get(exclude, -1) if exclude is not None else -1
        if len(self) <= max(FULL_COMPARISON, k):
            labels = np.arange(len(state.people))
            beyond, k, exact = np.full(len(queries), np.inf, dtype=np.float32), len(self), True
        else:
            index = self.index(exact)
            # the excluded person's vectors may fill some of the k places: k more are asked
            wanted = k + (len(state.rows(skip)) if skip >= 0 else 0)
            found = index.search(queries, min(wanted, len(self)))
            labels = np.unique(state.labels[found.ids[found.ids >= 0]])
            beyond, exact = found.distances[:, -1], index.exact
        labels = labels[labels != skip]
        return PersonDistances([state.people[label] for label in labels.tolist()],
                               self._to_people(state, queries, labels), beyond, k, exact)

    def person_distances(self, queries: FloatArray) -> FloatArray:
        """Q x P matrix: each query's distance to each person (nearest of their vectors);
        inf for the people of a large gallery that are not near any query."""
        queries = self._queries(queries)
        state = self._state()
        out = np.full((len(queries), len(state.people)), np.inf, dtype=np.float32)
        found = self.nearest_people(queries)
        out[:, [state.position[p] for p in found.people]] = found.distances
        return out

    def distances_to(self, name: str, queries: FloatArray) -> FloatArray:
        """Each query's distance to `name`'s nearest vector."""
        state = self._state()
        if name not in state.position:
            raise GalleryError(f"{name!r} is not enrolled", "person_not_found")
        return self._to_people(state, self._queries(queries),
                               np.array([state.position[name]]))[:, 0]

    def _queries(self, queries: FloatArray) -> FloatArray:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if queries.shape[1] != self.dim:
            raise GalleryError(
                f"query vectors have {queries.shape[1]} dimensions, gallery has {self.dim}"
            )
        return queries

    def _to_people(self, state: _Derived, queries: FloatArray,
                   labels: npt.NDArray[np.int64]) -> FloatArray:
        """Q x len(labels): exact distances to each listed person's nearest vector."""
        if not len(labels):
            return np.zeros((len(queries), 0), dtype=np.float32)
        groups = [state.rows(label) for label in labels.tolist()]
        offsets = np.cumsum([0] + [len(g) for g in groups[:-1]])
        distances = euclidean(queries, self.vectors[np.concatenate(groups)])
        return np.minimum.reduceat(distances, offsets, axis=1)

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
        np.savez(buffer, header=raw, vectors=np.asarray(self.vectors, dtype=np.float32))
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
