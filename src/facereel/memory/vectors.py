"""The face memory's vector index: `facereel.core.index` behind the three calls the snapshot
makes (`new_index`, `index_to_bytes`, `index_from_bytes`).

An `AutoIndex` starts exact (numpy, in bounded blocks) and turns into FAISS's IVF index past
`core.index.EXACT_MAX` vectors (when the `ann` extra is installed), as the writer adds videos;
its saved form is plain arrays in a zip (`core.index.persist`), checked before anything is
allocated. A snapshot written before this format (bare `ids`/`vectors` arrays) is unreadable
here, and the writer rebuilds it from the memory.
"""

from __future__ import annotations

from facereel.core.index import AutoIndex, ExactIndex, VectorIndexError, from_bytes, to_bytes

IndexDataError = VectorIndexError  # what a snapshot's unreadable index raises


def new_index(dim: int) -> AutoIndex:
    return AutoIndex(ExactIndex(dim))


def index_to_bytes(index: AutoIndex) -> bytes:
    return to_bytes(index.inner)


def index_from_bytes(data: bytes, dim: int) -> AutoIndex:
    index = AutoIndex(from_bytes(data, "the face index snapshot"))
    if index.dim != dim:
        raise IndexDataError(f"the snapshot's index holds {index.dim}-d vectors, not {dim}-d")
    return index
