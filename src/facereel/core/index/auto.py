"""Which backend for how many vectors: exact search for small sets, approximate above.

Up to `EXACT_MAX` vectors a brute-force scan answers a query in ~3 ms on one core (0.3 ms at
10k) and needs no training, so it is exact and the cheaper one to build; above, the scan grows
linearly (21 ms at 200k, 115 ms at 1M) while the IVF index stays under a millisecond (figures
in the README's "Face index at a million faces", from bench/index.py).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from facereel.core.index.base import IndexData, Neighbours, VectorIndex, restore
from facereel.core.index.exact import ExactIndex
from facereel.core.index.faiss_ivf import (
    FaissIvfIndex,
    faiss_available,
    warn_exact_fallback,
)

EXACT_MAX = 50_000  # vectors up to which search is exact
REBUILD_GROWTH = 4  # an IVF index grown this many times past its training is retrained


def build_index(vectors: npt.ArrayLike, ids: npt.ArrayLike | None = None,
                exact_max: int | None = None, threads: int = 1) -> VectorIndex:
    """An index of `vectors` (ids 0..n-1 unless given): exact up to `exact_max` vectors
    (default EXACT_MAX), approximate above (trained on them, using `threads` threads). Without
    FAISS installed (the `ann` extra) search stays exact, slower but right, and says so."""
    matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    if len(matrix) <= (EXACT_MAX if exact_max is None else exact_max):
        return ExactIndex.of(matrix, ids)
    if not faiss_available():
        warn_exact_fallback()
        return ExactIndex.of(matrix, ids)
    return FaissIvfIndex.build(matrix, ids, threads=threads)


class AutoIndex:
    """A VectorIndex that changes backend as it grows or shrinks: it becomes approximate past
    `exact_max` vectors, is retrained once it holds REBUILD_GROWTH times what it was trained
    on (longer groups make every query scan more), and turns exact again below half of
    `exact_max` (the gap keeps a size at the border from rebuilding on every change)."""

    def __init__(self, index: VectorIndex, exact_max: int | None = None,
                 threads: int = 1) -> None:
        self.inner = index
        self.exact_max = EXACT_MAX if exact_max is None else exact_max
        self.threads = threads
        self._trained_at = len(index)

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def exact(self) -> bool:
        return self.inner.exact

    @property
    def dim(self) -> int:
        return self.inner.dim

    def __len__(self) -> int:
        return len(self.inner)

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        self.inner.add(ids, vectors)
        exact = isinstance(self.inner, ExactIndex)
        if (exact and len(self) > self.exact_max and faiss_available()) or (
                not exact and len(self) > REBUILD_GROWTH * max(1, self._trained_at)):
            self._rebuild()

    def remove(self, ids: npt.ArrayLike) -> int:
        removed = self.inner.remove(ids)
        if not isinstance(self.inner, ExactIndex) and len(self) < self.exact_max // 2:
            self._rebuild()
        return removed

    def search(self, queries: npt.ArrayLike, k: int) -> Neighbours:
        return self.inner.search(queries, k)

    def export(self) -> IndexData:
        return self.inner.export()

    @classmethod
    def restore(cls, data: IndexData, exact_max: int | None = None) -> AutoIndex:
        return cls(restore(data), exact_max)

    def _rebuild(self) -> None:
        data = self.inner.export()
        self.inner = build_index(data.arrays["vectors"], data.arrays["ids"], self.exact_max,
                                 self.threads)
        self._trained_at = len(self.inner)
