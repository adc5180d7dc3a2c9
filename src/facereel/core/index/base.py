"""The vector index's port: what any backend promises, and the records it answers with.

An index maps non-negative integer ids to vectors of one dimension and answers, for a batch of
queries, the k nearest ids by Euclidean (L2) distance. Backends register themselves by kind
(`register_index`), so a saved index is reopened by the backend that wrote it and a new backend
is one new file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from facereel.core.types import FloatArray
from facereel.errors import FacereelError

IdArray = npt.NDArray[np.int64]
MAX_DIM = 4096


class VectorIndexError(FacereelError):
    """An index cannot be built, changed, or read (bad ids, wrong dimension, bad file...)."""

    code = "bad_index"


@dataclass(frozen=True, slots=True)
class Neighbours:
    """The answer to a batch of Q queries for k neighbours, nearest first in each row."""

    ids: IdArray  # Q x k; -1 where the index holds fewer than k vectors
    distances: FloatArray  # Q x k Euclidean distances; inf where `ids` is -1


@dataclass(frozen=True, slots=True)
class IndexData:
    """An index as plain arrays and numbers: what is saved, and all a backend needs to rebuild
    itself without the library's own (unvalidated) binary format."""

    kind: str
    dim: int
    params: dict[str, int] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class VectorIndex(Protocol):
    """Nearest-neighbour search over vectors with integer ids.

    - `add(ids, vectors)`: ids are non-negative and unique within the index (adding one that is
      already there is refused, and nothing of that call is added); vectors are `dim` finite
      numbers each (stored as float32).
    - `remove(ids)`: forgets them (a removed id is never answered again); ids it does not hold
      are ignored. Answers how many were removed.
    - `search(queries, k)`: each query's k nearest ids, nearest first. Exact backends answer the
      true k nearest; approximate ones may miss some (their recall is measured in
      bench/index.py), but every distance they answer is the true distance of that id.
    - `export()` / the backend's `restore(data)`: a round trip that answers as before.
    - `exact`: whether `search` always answers the true k nearest.
    """

    kind: str
    dim: int
    exact: bool

    def __len__(self) -> int: ...

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None: ...

    def remove(self, ids: npt.ArrayLike) -> int: ...

    def search(self, queries: npt.ArrayLike, k: int) -> Neighbours: ...

    def export(self) -> IndexData: ...


Restorer = Callable[[IndexData], VectorIndex]
_BACKENDS: dict[str, Restorer] = {}


def register_index(kind: str, restore: Restorer) -> None:
    """Make `restore` the way to reopen saved indexes of `kind`."""
    _BACKENDS[kind] = restore


def restore(data: IndexData) -> VectorIndex:
    """The index `data` describes, rebuilt by the backend of its kind."""
    if data.kind not in _BACKENDS:
        raise VectorIndexError(f"unknown index kind {data.kind!r}; known: "
                               f"{', '.join(sorted(_BACKENDS))}")
    return _BACKENDS[data.kind](data)


def as_vectors(vectors: npt.ArrayLike, dim: int, what: str = "vectors") -> FloatArray:
    """`vectors` as a contiguous float32 matrix of `dim` columns, all finite."""
    matrix = np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise VectorIndexError(f"{what} of shape {matrix.shape} do not fit a {dim}-d index")
    if not np.all(np.isfinite(matrix)):
        raise VectorIndexError(f"{what} contain NaN or infinite values")
    return matrix


def as_ids(ids: npt.ArrayLike) -> IdArray:
    """`ids` as a flat int64 array of non-negative values."""
    array = np.asarray(ids)
    if array.size and array.dtype.kind not in "iu":
        raise VectorIndexError(f"ids must be integers, not {array.dtype}")
    flat = np.ascontiguousarray(array.reshape(-1), dtype=np.int64)
    if flat.size and int(flat.min()) < 0:
        raise VectorIndexError("ids must be non-negative")
    return flat


def checked_entries(ids: npt.ArrayLike, vectors: npt.ArrayLike,
                    dim: int) -> tuple[IdArray, FloatArray]:
    """Ids and vectors of one `add`, one id per vector, no id twice."""
    id_array, matrix = as_ids(ids), as_vectors(vectors, dim)
    if len(id_array) != len(matrix):
        raise VectorIndexError(f"{len(id_array)} ids for {len(matrix)} vectors")
    if len(np.unique(id_array)) != len(id_array):
        raise VectorIndexError("the same id is given twice")
    return id_array, matrix


def check_k(k: int) -> int:
    if not isinstance(k, int | np.integer) or k < 1:
        raise VectorIndexError(f"k must be a positive integer, not {k!r}")
    return int(k)


class IdSet:
    """The ids an index holds, as a sorted array: membership for a batch costs a binary search
    per id, and the set takes 8 bytes per id (a Python set of a million ints takes ~60 MB)."""

    def __init__(self, ids: IdArray | None = None) -> None:
        self._sorted = np.sort(ids) if ids is not None else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._sorted)

    def contains(self, ids: IdArray) -> npt.NDArray[np.bool_]:
        at = np.searchsorted(self._sorted, ids)
        inside = at < len(self._sorted)
        found = np.zeros(len(ids), dtype=bool)
        found[inside] = self._sorted[at[inside]] == ids[inside]
        return found

    def add(self, ids: IdArray) -> None:
        """Adds `ids` (unique among themselves), refusing all of them if any is held."""
        if self.contains(ids).any():
            raise VectorIndexError("an id being added is already in the index")
        self._sorted = np.union1d(self._sorted, ids)

    def remove(self, ids: IdArray) -> int:
        held = np.unique(ids[self.contains(ids)])
        self._sorted = np.setdiff1d(self._sorted, held, assume_unique=True)
        return len(held)
