"""Density-based grouping of faces nobody is enrolled as, the way photo libraries group the
faces nobody has named yet (DBSCAN over one vector per face track): a group is a set of
tracks each reachable from a core track (one with at least `min_tracks` tracks, itself
included, within `eps`); tracks near no core stay ungrouped. Pure numpy, exact neighbours
computed in blocks (the memory's strangers, not its every face).

Groups keep their ids across runs (`stable_ids`): a new grouping takes over the id of the
previous group it shares the most tracks with, so faces of unrelated videos arriving never
rename a group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from typing import TypeVar

import numpy as np

from facereel.core.types import FloatArray

BLOCK = 1024  # rows of the distance matrix computed at once
K = TypeVar("K", bound=Hashable)


def track_vector(embeddings: FloatArray) -> FloatArray:
    """One vector for a face track: the median of its shots' embeddings (robust to a shot
    of a turned head), as float32."""
    return np.median(np.asarray(embeddings, dtype=np.float32), axis=0).astype(np.float32)


def neighbours(vectors: FloatArray, eps: float) -> list[np.ndarray]:
    """For each vector, the indices of the vectors within `eps` (itself included)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    squares = np.einsum("nd,nd->n", vectors, vectors)
    found: list[np.ndarray] = []
    for start in range(0, len(vectors), BLOCK):
        block = vectors[start:start + BLOCK]
        dist2 = squares[start:start + BLOCK, None] + squares[None, :] - 2 * block @ vectors.T
        for row in dist2:
            found.append(np.flatnonzero(row <= eps * eps + 1e-6))
    return found


def density_clusters(vectors: FloatArray, eps: float, min_tracks: int) -> list[int]:
    """DBSCAN: a cluster number per vector (from 0, in order of first appearance), or -1
    for a vector in no cluster. Deterministic for the same vectors in the same order."""
    count = len(vectors)
    if count == 0:
        return []
    near = neighbours(vectors, eps)
    core = [len(n) >= min_tracks for n in near]
    labels = [-1] * count
    cluster = 0
    for seed in range(count):
        if labels[seed] != -1 or not core[seed]:
            continue
        labels[seed] = cluster
        frontier = [seed]
        while frontier:
            point = frontier.pop()
            if not core[point]:
                continue  # a border track belongs to the group but does not extend it
            for other in near[point].tolist():
                if labels[other] == -1:
                    labels[other] = cluster
                    frontier.append(other)
        cluster += 1
    return labels


def _fresh_id(members: Sequence[Hashable], used: set[str]) -> str:
    """A new group's id: from its first member (the same grouping gets the same id)."""
    seed = repr(sorted(map(repr, members))[0]) if members else "empty"
    salt = 0
    while True:
        candidate = hashlib.sha256(f"{seed}#{salt}".encode()).hexdigest()[:12]
        if candidate not in used:
            return candidate
        salt += 1


def stable_ids(previous: dict[str, set[K]], clusters: list[set[K]],
               taken: set[str] | None = None) -> dict[str, set[K]]:
    """Name each new cluster: the id of the previous group it shares the most members with
    (each id given once, the largest overlaps first), else a new id not in `taken`."""
    pairs = sorted(((len(members & old), number, gid)
                    for number, members in enumerate(clusters)
                    for gid, old in previous.items() if members & old),
                   key=lambda p: (-p[0], p[1], p[2]))
    named: dict[int, str] = {}
    used = set(taken or ())
    for _, number, gid in pairs:
        if number not in named and gid not in used:
            named[number] = gid
            used.add(gid)
    result: dict[str, set[K]] = {}
    for number, members in enumerate(clusters):
        gid = named.get(number) or _fresh_id(list(members), used | set(previous))
        used.add(gid)
        result[gid] = members
    return result
