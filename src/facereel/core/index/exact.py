"""ExactIndex: brute-force search in numpy, for small sets (and as the reference).

The gallery is scanned in blocks: each block's squared distances come from one matrix product
(the expansion), the k best of the block are kept, and only the final k per query get their
exact distances. Memory is bounded by the block size, whatever the number of vectors.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from facereel.core.index.base import (
    IdArray,
    IdSet,
    IndexData,
    Neighbours,
    VectorIndexError,
    as_ids,
    as_vectors,
    check_k,
    checked_entries,
    register_index,
)
from facereel.core.index.distances import euclidean_rows, squared_expanded
from facereel.core.types import FloatArray

KIND = "exact"
QUERY_BLOCK = 256  # queries scanned together (one matrix product per block of vectors)
SCAN_ELEMENTS = 1 << 21  # partial distances per block: with their ranks, ~24 MB


class ExactIndex:
    kind = KIND
    exact = True

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._ids: IdArray = np.zeros(0, dtype=np.int64)
        self._vectors: FloatArray = np.zeros((0, dim), dtype=np.float32)
        self._norms: FloatArray = np.zeros(0, dtype=np.float32)
        self._known = IdSet()

    @classmethod
    def of(cls, vectors: npt.ArrayLike, ids: npt.ArrayLike | None = None) -> ExactIndex:
        """An index of `vectors` (ids 0..n-1 unless given). The vectors are not copied when
        they already are a contiguous float32 matrix: the index never changes them in place."""
        matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        index = cls(matrix.shape[1])
        index.add(np.arange(len(matrix)) if ids is None else ids, matrix)
        return index

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        id_array, matrix = checked_entries(ids, vectors, self.dim)
        self._known.add(id_array)
        norms = np.einsum("nd,nd->n", matrix, matrix)
        if not len(self._ids):  # the first batch is kept as given (a gallery's own array)
            self._ids, self._vectors, self._norms = id_array, matrix, norms
            return
        self._ids = np.concatenate([self._ids, id_array])
        self._vectors = np.vstack([self._vectors, matrix])
        self._norms = np.concatenate([self._norms, norms])

    def remove(self, ids: npt.ArrayLike) -> int:
        id_array = as_ids(ids)
        removed = self._known.remove(id_array)
        if removed:
            keep = ~np.isin(self._ids, id_array)
            self._ids, self._vectors = self._ids[keep], self._vectors[keep]
            self._norms = self._norms[keep]
        return removed

    def search(self, queries: npt.ArrayLike, k: int) -> Neighbours:
        matrix = as_vectors(queries, self.dim, "queries")
        k = check_k(k)
        ids = np.full((len(matrix), k), -1, dtype=np.int64)
        distances = np.full((len(matrix), k), np.inf, dtype=np.float32)
        take = min(k, len(self))
        for start in range(0, len(matrix) if take else 0, QUERY_BLOCK):
            block = matrix[start:start + QUERY_BLOCK]
            rows = self._nearest_rows(block, take)
            exact = euclidean_rows(block, self._vectors, rows)
            order = np.argsort(exact, axis=1, kind="stable")
            ids[start:start + len(block), :take] = self._ids[np.take_along_axis(rows, order, 1)]
            distances[start:start + len(block), :take] = np.take_along_axis(exact, order, 1)
        return Neighbours(ids, distances)

    def _nearest_rows(self, block: FloatArray, take: int) -> npt.NDArray[np.int64]:
        """The `take` rows nearest each query of `block` (by the expansion), unordered."""
        norms = np.einsum("qd,qd->q", block, block)
        step = max(take, SCAN_ELEMENTS // len(block))
        best_d = np.zeros((len(block), 0), dtype=np.float32)
        best_rows = np.zeros((len(block), 0), dtype=np.int64)
        for start in range(0, len(self), step):
            part = squared_expanded(block, norms, self._vectors[start:start + step],
                                    self._norms[start:start + step])
            rows = _smallest(part, take) if part.shape[1] > take else np.broadcast_to(
                np.arange(part.shape[1]), part.shape)
            best_d = np.concatenate([best_d, np.take_along_axis(part, rows, 1)], axis=1)
            best_rows = np.concatenate([best_rows, rows + start], axis=1)
            if best_d.shape[1] > take:
                keep = _smallest(best_d, take)
                best_d = np.take_along_axis(best_d, keep, 1)
                best_rows = np.take_along_axis(best_rows, keep, 1)
        return best_rows

    def export(self) -> IndexData:
        return IndexData(KIND, self.dim, {}, {"ids": self._ids, "vectors": self._vectors})

    @classmethod
    def restore(cls, data: IndexData) -> ExactIndex:
        ids, vectors = data.arrays.get("ids"), data.arrays.get("vectors")
        if ids is None or vectors is None or set(data.arrays) != {"ids", "vectors"}:
            raise VectorIndexError("an exact index needs exactly `ids` and `vectors`")
        index = cls(data.dim)
        index.add(ids, vectors)
        return index


def _smallest(values: FloatArray, take: int) -> npt.NDArray[np.int64]:
    """Column positions of each row's `take` smallest values, unordered."""
    return np.argpartition(values, take - 1, axis=1)[:, :take]


register_index(KIND, ExactIndex.restore)
