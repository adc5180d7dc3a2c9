"""Exact Euclidean distances, computed in blocks so memory stays bounded.

Distances are taken the plain way, sqrt(sum((q - v)^2)), rather than by expanding
|q|^2 - 2 q.v + |v|^2: the expansion is faster but loses precision to cancellation (about 1e-5
at the distances that decide a match), and matching near a threshold must not depend on it.
Only the few distances that are answered are computed this way; searches narrow down with the
expansion first (`squared_expanded`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from facereel.core.types import FloatArray

BLOCK_ELEMENTS = 1 << 22  # floats of difference vectors held at once (16 MB)


def euclidean(queries: FloatArray, vectors: FloatArray) -> FloatArray:
    """Q x N: every query's distance to every vector, never holding more than BLOCK_ELEMENTS
    differences at once (the whole Q x N x dim array would be 0.5 GB per query at 1M faces)."""
    dim = queries.shape[1]
    out = np.empty((len(queries), len(vectors)), dtype=np.float32)
    if not out.size:
        return out
    columns = max(1, BLOCK_ELEMENTS // dim)
    rows = max(1, BLOCK_ELEMENTS // (dim * min(columns, len(vectors))))
    for q in range(0, len(queries), rows):
        for c in range(0, len(vectors), columns):
            diff = queries[q:q + rows, None, :] - vectors[None, c:c + columns, :]
            out[q:q + rows, c:c + columns] = np.sqrt(np.einsum("qnd,qnd->qn", diff, diff))
    return out


def euclidean_rows(queries: FloatArray, vectors: FloatArray,
                   rows: npt.NDArray[np.int64]) -> FloatArray:
    """Q x t: each query's distance to its own t rows of `vectors` (`rows` is Q x t)."""
    out = np.empty(rows.shape, dtype=np.float32)
    if not out.size:
        return out
    dim = queries.shape[1]
    columns = max(1, min(rows.shape[1], BLOCK_ELEMENTS // dim))
    step = max(1, BLOCK_ELEMENTS // (dim * columns))
    for q in range(0, len(queries), step):
        for c in range(0, rows.shape[1], columns):
            diff = queries[q:q + step, None, :] - vectors[rows[q:q + step, c:c + columns]]
            out[q:q + step, c:c + columns] = np.sqrt(np.einsum("qnd,qnd->qn", diff, diff))
    return out


def squared_expanded(queries: FloatArray, query_norms: FloatArray, vectors: FloatArray,
                     vector_norms: FloatArray) -> FloatArray:
    """Q x N approximate squared distances by the expansion (one matrix product, then in
    place): for choosing candidates, whose exact distances are then computed."""
    out = queries @ vectors.T
    out *= -2.0
    out += vector_norms[None, :]
    out += query_norms[:, None]
    return out
