"""FaissIvfIndex: approximate search for large sets, FAISS's inverted file of flat vectors.

Vectors are grouped around `nlist` k-means centroids; a query scans only the vectors of its
`nprobe` nearest groups, with exact distances. Chosen over FAISS HNSW, usearch and voyager by
bench/index.py on 1M synthetic faces: recall@1 1.000 at 1.3 ms a query on one core (HNSW
graphs: at most 0.97, at 1.4-3.9 ms), built with 2 min of CPU (the graphs took 5.5-6), removal
that really frees the vectors, and a saved form (centroids, and each group's ids and vectors)
that is plain arrays, so reopening never parses the library's own binary format and costs a
copy, not a rebuild.

FAISS is imported on first use: a gallery small enough for exact search never loads it.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from facereel.core.index.base import (
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
from facereel.core.index.exact import ExactIndex
from facereel.core.types import FloatArray

log = logging.getLogger(__name__)
KIND = "faiss-ivf"
NPROBE = 64  # groups scanned per query: recall@1 1.000 on 1M faces (32: 0.997, 16: 0.992);
# 32 missed 3 of the 8 real clips' people among 1M synthetic faces, 64 one (README)
LISTS_PER_ROOT = 4  # nlist ~ 4 sqrt(n): ~8 sqrt(n) vectors scanned per query
TRAIN_PER_LIST = 40  # k-means sample: FAISS wants at least 39 points per centroid
TRAIN_ITERATIONS = 20
SEED = 1234  # training is deterministic: one gallery, one index


def faiss_available() -> bool:
    return importlib.util.find_spec("faiss") is not None


@cache
def warn_exact_fallback() -> None:
    """Said once: search still works without FAISS, only slower."""
    log.warning("FAISS is not installed: large sets are searched exactly, tens of ms a query "
                "instead of about one (install facereel[ann])")


@cache
def _faiss() -> Any:
    """FAISS, set to one OpenMP thread for this process: hosts run one worker per core, and
    changing the count around every search costs more than the search (libgomp re-forms its
    team: 3.5 ms instead of 0.3 for 5 queries here). Builds raise it for their duration."""
    try:
        import faiss
    except ImportError as exc:
        raise VectorIndexError("approximate search needs the faiss-cpu package "
                               "(pip install 'facereel[ann]')", "index_unavailable") from exc
    faiss.omp_set_num_threads(1)
    return faiss


@contextmanager
def omp_threads(count: int) -> Iterator[None]:
    """`count` OpenMP threads for one build, then one again."""
    faiss = _faiss()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(1)


def lists_for(count: int) -> int:
    """Groups for `count` vectors: a power of two near 4 sqrt(count), with enough vectors per
    group to train on."""
    wanted = 1 << round(math.log2(max(1.0, LISTS_PER_ROOT * math.sqrt(count))))
    return max(1, min(wanted, count // TRAIN_PER_LIST))


class FaissIvfIndex:
    kind = KIND
    exact = False

    def __init__(self, centroids: FloatArray, nprobe: int = NPROBE, threads: int = 1) -> None:
        faiss = _faiss()
        self.dim = centroids.shape[1]
        self.threads = threads  # for adding vectors; searches use one
        self._centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self._quantizer = faiss.IndexFlatL2(self.dim)
        self._quantizer.add(self._centroids)
        self._index = faiss.IndexIVFFlat(self._quantizer, self.dim, len(centroids))
        self.nprobe = nprobe
        self._known = IdSet()

    @property
    def nprobe(self) -> int:
        """Groups scanned per query: more is slower and misses less."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._nprobe = value
        self._index.nprobe = min(value, len(self._centroids))

    @classmethod
    def build(cls, vectors: npt.ArrayLike, ids: npt.ArrayLike | None = None,
              nprobe: int = NPROBE, threads: int = 1) -> FaissIvfIndex:
        """Train the groups on a sample of `vectors`, then add them all (ids 0..n-1 unless
        given). Deterministic for the same vectors."""
        matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if not len(matrix):
            raise VectorIndexError("an approximate index needs vectors to train on")
        matrix = as_vectors(matrix, matrix.shape[1])
        nlist = lists_for(len(matrix))
        rng = np.random.default_rng(SEED)
        sample_size = min(len(matrix), nlist * TRAIN_PER_LIST)
        sample = matrix[np.sort(rng.choice(len(matrix), sample_size, replace=False))]
        faiss = _faiss()
        with omp_threads(threads):
            kmeans = faiss.Kmeans(matrix.shape[1], nlist, niter=TRAIN_ITERATIONS, seed=SEED)
            kmeans.train(sample)
        index = cls(kmeans.centroids, nprobe, threads)
        index.add(np.arange(len(matrix)) if ids is None else ids, matrix)
        return index

    def __len__(self) -> int:
        return len(self._known)

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        id_array, matrix = checked_entries(ids, vectors, self.dim)
        self._known.add(id_array)
        with omp_threads(self.threads):
            self._index.add_with_ids(matrix, id_array)

    def remove(self, ids: npt.ArrayLike) -> int:
        id_array = as_ids(ids)
        removed = self._known.remove(id_array)
        if removed:
            self._index.remove_ids(id_array)
        return removed

    def search(self, queries: npt.ArrayLike, k: int) -> Neighbours:
        matrix = as_vectors(queries, self.dim, "queries")
        k = check_k(k)
        if not len(self):
            return Neighbours(np.full((len(matrix), k), -1, dtype=np.int64),
                              np.full((len(matrix), k), np.inf, dtype=np.float32))
        squared, ids = self._index.search(matrix, k)
        distances = np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)
        distances[ids < 0] = np.inf
        return Neighbours(ids.astype(np.int64), distances)

    def export(self) -> IndexData:
        """The centroids, and every group's ids and vectors in group order (`sizes`)."""
        faiss, lists = _faiss(), self._index.invlists
        nlist = len(self._centroids)
        sizes = np.array([lists.list_size(g) for g in range(nlist)], dtype=np.int64)
        ids = np.empty(int(sizes.sum()), dtype=np.int64)
        vectors = np.empty((len(ids), self.dim), dtype=np.float32)
        at = 0
        for group, size in enumerate(sizes.tolist()):
            if size:
                ids[at:at + size] = faiss.rev_swig_ptr(lists.get_ids(group), size)
                codes = faiss.rev_swig_ptr(lists.get_codes(group), size * lists.code_size)
                vectors[at:at + size] = np.frombuffer(codes, dtype=np.float32).reshape(
                    size, self.dim)
                at += size
        return IndexData(KIND, self.dim, {"nprobe": self.nprobe},
                         {"centroids": self._centroids, "sizes": sizes, "ids": ids,
                          "vectors": vectors})

    @classmethod
    def restore(cls, data: IndexData) -> FaissIvfIndex:
        """The exported index, every group refilled as it was (no vector is re-assigned)."""
        arrays = data.arrays
        if set(arrays) != {"centroids", "sizes", "ids", "vectors"}:
            raise VectorIndexError("an IVF index needs centroids, sizes, ids and vectors")
        centroids = as_vectors(arrays["centroids"], data.dim, "centroids")
        sizes = as_ids(arrays["sizes"])
        if not len(centroids) or len(sizes) != len(centroids):
            raise VectorIndexError("an IVF index needs one size per centroid")
        ids, vectors = checked_entries(arrays["ids"], arrays["vectors"], data.dim)
        if int(sizes.sum()) != len(ids):
            raise VectorIndexError("IVF group sizes do not add up to the number of vectors")
        nprobe = data.params.get("nprobe", NPROBE)
        if not isinstance(nprobe, int) or nprobe < 1:
            raise VectorIndexError(f"invalid nprobe {nprobe!r}")
        index = cls(centroids, nprobe)
        index._known.add(ids)
        groups = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        faiss = _faiss()
        index._index.add_core(len(ids), faiss.swig_ptr(vectors), faiss.swig_ptr(ids),
                              faiss.swig_ptr(groups))
        return index


def _restore(data: IndexData) -> FaissIvfIndex | ExactIndex:
    """A saved IVF index; without FAISS, an exact index of the same vectors."""
    if faiss_available():
        return FaissIvfIndex.restore(data)
    warn_exact_fallback()
    return ExactIndex.restore(IndexData("exact", data.dim, {}, {
        key: data.arrays[key] for key in ("ids", "vectors") if key in data.arrays}))


register_index(KIND, _restore)
