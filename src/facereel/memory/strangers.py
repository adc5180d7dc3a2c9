"""Strangers grouped: the face memory's tracks matched to nobody, grouped across videos
(`memory.clusters`), incrementally: only the videos whose record changed since the last run
(another etag or version) are read again, and groups keep their ids. Groups merged or split
by hand are `pinned`: kept exactly as made (their tracks leave them only when forgotten or
recognized), and the other strangers are grouped around them.

New strangers dense around a pinned group join it, as a photo library puts a new face of a
person in their confirmed group.

`refresh` runs with the face index writer (`facereel memory index`, `facereel up`) and before
a listing when the memory changed since.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from facereel.errors import FacereelError
from facereel.memory.clusters import density_clusters, stable_ids, track_vector
from facereel.ports.memory import MemoryStore, VideoMemory
from facereel.ports.strangers import Group, StrangerPoint, StrangerState, TrackRef

SAMPLES = 4  # crops shown per group


@dataclass(frozen=True, slots=True)
class Grouping:
    """How strangers are grouped: tracks within `eps` of each other (Euclidean, between
    median embeddings), at least `min_tracks` around a core track."""

    eps: float = 0.5
    min_tracks: int = 3


def points_of(record: VideoMemory) -> list[StrangerPoint]:
    return [StrangerPoint(record.video, record.etag, t.track_id, len(t.shots), t.face,
                          track_vector(t.embeddings))
            for t in record.tracks if t.person is None and len(t.embeddings)]


def update_points(state: StrangerState, memory: MemoryStore) -> bool:
    """Read the records changed since `state` was made; whether anything changed."""
    current = {s.video: (s.etag, s.version) for s in memory.videos()
               if s.embedder == state.embedder}
    stale = [v for v, at in current.items() if state.videos.get(v) != at]
    stale += [v for v in state.videos if v not in current]
    for video in stale:
        state.videos.pop(video, None)
        for ref in [ref for ref in state.points if ref[0] == video]:
            del state.points[ref]
        record = memory.get(video)
        if record is not None and record.embedder == state.embedder:
            state.videos[video] = (record.etag, record.version)
            state.points.update((p.ref, p) for p in points_of(record))
    return bool(stale)


def regroup(state: StrangerState, grouping: Grouping) -> None:
    """Group the strangers again: pinned groups keep their (remaining) tracks and take in
    new tracks dense around them, the others are clustered, keeping the ids of the groups
    they continue."""
    for gid, group in list(state.groups.items()):
        group.members = [ref for ref in group.members if ref in state.points]
        if group.pinned and not group.members:
            del state.groups[gid]
    free = _attach(state, grouping)
    labels = density_clusters(np.asarray([state.points[ref].vector for ref in free]),
                              grouping.eps, grouping.min_tracks) if free else []
    clusters: dict[int, set[TrackRef]] = {}
    for ref, label in zip(free, labels, strict=True):
        if label >= 0:
            clusters.setdefault(label, set()).add(ref)
    previous = {gid: set(g.members) for gid, g in state.groups.items() if not g.pinned}
    named = stable_ids(previous, [clusters[n] for n in sorted(clusters)],
                       {gid for gid, g in state.groups.items() if g.pinned})
    state.groups = {gid: g for gid, g in state.groups.items() if g.pinned}
    state.groups.update((gid, Group(sorted(members))) for gid, members in named.items())


def _attach(state: StrangerState, grouping: Grouping) -> list[TrackRef]:
    """Tracks in no pinned group that have, within `eps`, `min_tracks - 1` tracks of one
    pinned group (or all of a smaller one) join it (the one where they have the most);
    the rest are answered, to be clustered."""
    pinned = [(gid, g) for gid, g in state.groups.items() if g.pinned]
    held = {ref for _, g in pinned for ref in g.members}
    free = [ref for ref in state.points if ref not in held]
    if not pinned or not free:
        return free
    vectors = np.asarray([state.points[ref].vector for ref in free], dtype=np.float32)
    counts = np.zeros((len(free), len(pinned)), dtype=np.int64)
    for column, (_, group) in enumerate(pinned):
        members = np.asarray([state.points[m].vector for m in group.members], np.float32)
        needed = min(grouping.min_tracks - 1, len(group.members))
        near = (_distances(vectors, members) <= grouping.eps).sum(axis=1)
        counts[:, column] = np.where(near >= needed, near, 0)
    left = []
    for row, ref in enumerate(free):
        if counts[row].max() == 0:
            left.append(ref)
        else:  # the most neighbours there; the first such group on a tie
            state.groups[pinned[int(counts[row].argmax())][0]].members.append(ref)
    return left


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of `a` and of `b`."""
    squares = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2 * a @ b.T
    distances: np.ndarray = np.sqrt(np.maximum(squares, 0.0))
    return distances


def group_of(state: StrangerState, group_id: str) -> Group:
    group = state.groups.get(group_id)
    if group is None:
        raise FacereelError(f"no group of strangers {group_id!r} (see facereel strangers)",
                            "not_found")
    return group


def merge_groups(state: StrangerState, group_ids: list[str]) -> str:
    """Join groups into the first one given (pinned: kept as made); its id."""
    unique = list(dict.fromkeys(group_ids))
    if len(unique) < 2:
        raise FacereelError("give at least two different groups to merge", "invalid_request")
    groups = [group_of(state, gid) for gid in unique]
    members = sorted({ref for group in groups for ref in group.members})
    for gid in unique[1:]:
        del state.groups[gid]
    state.groups[unique[0]] = Group(members, pinned=True)
    return unique[0]


def split_group(state: StrangerState, group_id: str, tracks: list[TrackRef]) -> str:
    """Move `tracks` of a group to a new group (both pinned: kept as made); the new id."""
    group = group_of(state, group_id)
    moving = set(tracks)
    unknown = moving - set(group.members)
    if unknown:
        video, track = sorted(unknown)[0]
        raise FacereelError(f"group {group_id!r} has no track {video}:{track}", "not_found")
    if not moving or moving == set(group.members):
        raise FacereelError("a split moves some of a group's tracks, not none or all",
                            "invalid_request")
    group.members = [ref for ref in group.members if ref not in moving]
    group.pinned = True
    new = stable_ids({}, [moving], set(state.groups))
    gid, members = next(iter(new.items()))
    state.groups[gid] = Group(sorted(members), pinned=True)
    return gid


def describe_group(state: StrangerState, group_id: str) -> dict[str, Any]:
    """A group as `facereel strangers --json` and GET /v1/strangers show it."""
    points = [state.points[ref] for ref in group_of(state, group_id).members]
    points.sort(key=lambda p: (-p.faces, p.video, p.track_id))
    return {"group_id": group_id, "faces": sum(p.faces for p in points),
            "tracks": len(points),
            "videos": [{"video": p.video, "etag": p.etag, "track_id": p.track_id}
                       for p in sorted(points, key=lambda p: (p.video, p.track_id))],
            "samples": [p.face for p in points if p.face][:SAMPLES]}


def listing(state: StrangerState) -> dict[str, Any]:
    """Every group (largest first) and how many strangers are in none."""
    groups = [describe_group(state, gid) for gid in state.groups]
    groups.sort(key=lambda g: (-g["tracks"], -g["faces"], g["group_id"]))
    return {"groups": groups, "ungrouped": len(set(state.points) - state.grouped())}
