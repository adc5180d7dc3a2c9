"""Nearest-neighbour search over face vectors: one port, an exact and an approximate backend.

    index = build_index(vectors)                  # ids 0..n-1; exact or approximate by size
    found = index.search(queries, k=32)           # Neighbours: Q x k ids and L2 distances
    index.add(ids, vectors); index.remove(ids)
    save(index, path); index = load(path)         # plain arrays in a zip, checked on reading

`AutoIndex` keeps one index right for its size while it grows and shrinks (the face memory's
incremental writer); the gallery builds its own with `build_index` when it is first searched.
"""

from facereel.core.index.auto import EXACT_MAX, AutoIndex, build_index
from facereel.core.index.base import (
    IndexData,
    Neighbours,
    VectorIndex,
    VectorIndexError,
    restore,
)
from facereel.core.index.exact import ExactIndex
from facereel.core.index.faiss_ivf import FaissIvfIndex
from facereel.core.index.persist import from_bytes, load, save, to_bytes

__all__ = [
    "EXACT_MAX",
    "AutoIndex",
    "ExactIndex",
    "FaissIvfIndex",
    "IndexData",
    "Neighbours",
    "VectorIndex",
    "VectorIndexError",
    "build_index",
    "from_bytes",
    "load",
    "restore",
    "save",
    "to_bytes",
]
