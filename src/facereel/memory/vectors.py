"""The face memory's vector index: exact nearest-neighbour search in numpy, in bounded blocks.

This stands in for `facereel.core.index` (branch issue13-index: a `VectorIndex` port with an
exact and an approximate backend, `AutoIndex` for incremental use, `to_bytes`/`from_bytes`)
until that is merged, and has its interface: `add(ids, vectors)`, `remove(ids)`,
`search(queries, k) -> Neighbours(ids, distances)`, `len()`, and `export()`/`restore()` as
plain arrays. Switching is `new_index`, `index_to_bytes` and `index_from_bytes` below (the
snapshot calls nothing else): `AutoIndex(ExactIndex(dim))`, `core.index.to_bytes(index)` and
`AutoIndex(core.index.from_bytes(data))`.

Search holds at most `SCAN_ELEMENTS` distances at a time, whatever the number of vectors.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facereel.core.types import FloatArray
from facereel.errors import FacereelError

IdArray = npt.NDArray[np.int64]
SCAN_ELEMENTS = 1 << 22  # query x vector distances computed at once (16 MB of float32)
MAX_ARRAY_BYTES = 1 << 33  # an array read back from a snapshot, at most


class IndexDataError(FacereelError):
    code = "bad_index"


@dataclass(frozen=True, slots=True)
class Neighbours:
    ids: IdArray  # Q x k, nearest first; -1 where the index holds fewer than k vectors
    distances: FloatArray  # Q x k Euclidean distances; inf where `ids` is -1


class ExactVectors:
    kind = "exact"
    exact = True

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._ids: IdArray = np.zeros(0, dtype=np.int64)
        self._vectors: FloatArray = np.zeros((0, dim), dtype=np.float32)
        self._norms: FloatArray = np.zeros(0, dtype=np.float32)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        id_array = np.asarray(ids, dtype=np.int64).reshape(-1)
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(id_array), self.dim)
        if np.isin(id_array, self._ids).any() or len(np.unique(id_array)) != len(id_array):
            raise IndexDataError("an id being added is already in the index")
        if not np.all(np.isfinite(matrix)):
            raise IndexDataError("vectors hold NaN or infinite values")
        self._ids = np.concatenate([self._ids, id_array])
        self._vectors = np.vstack([self._vectors, matrix])
        self._norms = np.concatenate([self._norms, np.einsum("nd,nd->n", matrix, matrix)])

    def remove(self, ids: npt.ArrayLike) -> int:
        gone = np.isin(self._ids, np.asarray(ids, dtype=np.int64).reshape(-1))
        keep = ~gone
        self._ids, self._vectors = self._ids[keep], self._vectors[keep]
        self._norms = self._norms[keep]
        return int(gone.sum())

    def search(self, queries: npt.ArrayLike, k: int) -> Neighbours:
        """Each query's k nearest, by distances computed a block of vectors at a time (the
        expansion |q|^2 + |v|^2 - 2 q.v: one matrix product per block)."""
        matrix = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        take = min(k, len(self))
        norms = np.einsum("qd,qd->q", matrix, matrix)
        best_d = np.zeros((len(matrix), 0), dtype=np.float32)
        best_i = np.zeros((len(matrix), 0), dtype=np.int64)
        step = max(take, SCAN_ELEMENTS // max(1, len(matrix)))
        for start in range(0, len(self) if take else 0, step):
            block = self._vectors[start:start + step]
            squared = norms[:, None] + self._norms[None, start:start + step] - 2 * matrix @ block.T
            best_d = np.concatenate([best_d, np.sqrt(np.maximum(squared, 0))], axis=1)
            best_i = np.concatenate([best_i, np.broadcast_to(
                np.arange(start, start + len(block)), squared.shape)], axis=1)
            if best_d.shape[1] > take:
                keep = np.argpartition(best_d, take - 1, axis=1)[:, :take]
                best_d = np.take_along_axis(best_d, keep, 1)
                best_i = np.take_along_axis(best_i, keep, 1)
        return _answer(best_d, best_i, self._ids, len(matrix), k)

    def export(self) -> dict[str, np.ndarray]:
        return {"ids": self._ids, "vectors": self._vectors}

    @classmethod
    def restore(cls, dim: int, arrays: dict[str, np.ndarray]) -> ExactVectors:
        index = cls(dim)
        if set(arrays) != {"ids", "vectors"} or arrays["vectors"].shape != (
                len(arrays["ids"]), dim):
            raise IndexDataError("an exact index needs `ids` and `vectors` of one length")
        index.add(arrays["ids"], arrays["vectors"])
        return index


def _answer(best_d: FloatArray, best_i: IdArray, ids: IdArray, queries: int,
            k: int) -> Neighbours:
    """Rows sorted nearest first, padded to k with -1 / inf."""
    order = np.argsort(best_d, axis=1, kind="stable")
    found_d = np.take_along_axis(best_d, order, 1)
    found = ids[np.take_along_axis(best_i, order, 1)]
    out_i = np.full((queries, k), -1, dtype=np.int64)
    out_d = np.full((queries, k), np.inf, dtype=np.float32)
    out_i[:, :found.shape[1]], out_d[:, :found_d.shape[1]] = found, found_d
    return Neighbours(out_i, out_d)


# ---- the switch-over points (see the module's docstring) ---------------------------------
def new_index(dim: int) -> ExactVectors:
    return ExactVectors(dim)


def index_to_bytes(index: ExactVectors) -> bytes:
    """The index as a zip of `.npy` arrays (no pickle)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in index.export().items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.save(member, array, allow_pickle=False)
    return buffer.getvalue()


def index_from_bytes(data: bytes, dim: int) -> ExactVectors:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            arrays = {}
            for info in archive.infolist():
                if info.file_size > MAX_ARRAY_BYTES or not info.filename.endswith(".npy"):
                    raise IndexDataError(f"unexpected index member {info.filename!r}")
                with archive.open(info) as member:
                    arrays[info.filename[:-4]] = np.load(member, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise IndexDataError(f"unreadable index ({exc})") from exc
    return ExactVectors.restore(dim, arrays)
