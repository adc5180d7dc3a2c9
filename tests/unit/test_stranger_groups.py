"""Grouping strangers on small synthetic vectors: density clusters (a minimum of tracks per
group, noise left out, no chaining through a lone face), ids that stay when unrelated faces
arrive, hand-made groups kept, and the state's round trip."""

from __future__ import annotations

import numpy as np
import pytest

from facereel.errors import FacereelError
from facereel.memory.clusters import density_clusters, stable_ids, track_vector
from facereel.memory.strangers import (
    Grouping,
    listing,
    merge_groups,
    regroup,
    split_group,
)
from facereel.ports.strangers import StrangerPoint, StrangerState

DIM = 8
rng = np.random.default_rng(7)


def _person(centre: int, count: int, spread: float = 0.1) -> np.ndarray:
    base = np.zeros(DIM, dtype=np.float32)
    base[centre] = 1.0
    return (base + rng.normal(0, spread / np.sqrt(DIM), (count, DIM))).astype(np.float32)


def test_density_clusters_group_people_and_leave_lone_faces_out() -> None:
    vectors = np.vstack([_person(0, 4), _person(1, 3), _person(2, 1), _person(3, 2)])
    labels = density_clusters(vectors, eps=0.5, min_tracks=3)
    assert labels[:4] == [0] * 4 and labels[4:7] == [1] * 3
    assert labels[7:] == [-1, -1, -1], "a face alone, or two, are no group"
    assert density_clusters(np.zeros((0, DIM), dtype=np.float32), 0.5, 3) == []


def test_a_border_face_joins_but_does_not_chain_two_people() -> None:
    a, b = _person(0, 3, 0.02), _person(1, 3, 0.02)
    bridge = ((a[0] + b[0]) / 2)[None, :]  # about 0.71 from each: near neither core
    labels = density_clusters(np.vstack([a, bridge, b]), eps=0.5, min_tracks=3)
    assert labels == [0, 0, 0, -1, 1, 1, 1]


def test_a_track_vector_is_the_median_of_its_shots() -> None:
    shots = np.array([[0, 0], [1, 1], [10, 10]], dtype=np.float32)
    assert track_vector(shots).tolist() == [1.0, 1.0]


def test_ids_stay_with_the_group_they_continue() -> None:
    previous = {"aaa": {1, 2, 3}, "bbb": {4, 5, 6}}
    named = stable_ids(previous, [{4, 5, 6, 7}, {10, 11, 12}, {1, 2, 3}])
    assert named["aaa"] == {1, 2, 3} and named["bbb"] == {4, 5, 6, 7}
    (new,) = set(named) - {"aaa", "bbb"}
    assert named[new] == {10, 11, 12} and len(new) == 12
    assert stable_ids({}, [{10, 11, 12}]) == {new: {10, 11, 12}}, "the same ids again"


def _state(groups: dict[int, int]) -> StrangerState:
    """Videos v<person>-<n>, one stranger track each, `count` per person."""
    state = StrangerState("test")
    for person, count in groups.items():
        for n, vector in enumerate(_person(person, count)):
            point = StrangerPoint(f"v{person}-{n}", "etag", "0", 2, f"crop-{person}-{n}",
                                  vector)
            state.points[point.ref] = point
    return state


def _by_person(state: StrangerState) -> dict[str, set[str]]:
    return {gid: {video.split("-")[0] for video, _ in g.members}
            for gid, g in state.groups.items()}


def test_groups_keep_their_ids_when_unrelated_videos_arrive() -> None:
    state = _state({0: 4, 1: 3})
    regroup(state, Grouping())
    before = {gid: list(g.members) for gid, g in state.groups.items()}
    assert sorted(map(sorted, _by_person(state).values())) == [["v0"], ["v1"]]
    arrived = _state({2: 3, 3: 1})
    state.points.update(arrived.points)
    regroup(state, Grouping())
    assert {gid: state.groups[gid].members for gid in before} == before
    assert len(state.groups) == 3
    shown = listing(state)
    assert shown["ungrouped"] == 1 and [g["tracks"] for g in shown["groups"]] == [4, 3, 3]
    first = shown["groups"][0]
    assert first["faces"] == 8 and len(first["samples"]) == 4
    assert first["videos"][0] == {"video": "v0-0", "etag": "etag", "track_id": "0"}


def test_merged_and_split_groups_are_kept_as_made() -> None:
    state = _state({0: 4, 1: 3})
    regroup(state, Grouping())
    first, second = sorted(state.groups, key=lambda g: state.groups[g].members[0])
    merged = merge_groups(state, [first, second])
    assert merged == first and len(state.groups[first].members) == 7
    regroup(state, Grouping())
    assert list(state.groups) == [first], "a merged group is not pulled apart again"
    new = split_group(state, first, [("v1-0", "0"), ("v1-1", "0"), ("v1-2", "0")])
    regroup(state, Grouping())
    assert _by_person(state) == {first: {"v0"}, new: {"v1"}}
    with pytest.raises(FacereelError, match="no track"):
        split_group(state, first, [("v9-0", "0")])
    with pytest.raises(FacereelError, match="no group"):
        merge_groups(state, [first, "nope"])
    with pytest.raises(FacereelError, match="two different"):
        merge_groups(state, [first, first])


def test_new_faces_dense_around_a_hand_made_group_join_it() -> None:
    state = _state({0: 3, 1: 3})
    regroup(state, Grouping())
    first, second = sorted(state.groups, key=lambda g: state.groups[g].members[0])
    merged = merge_groups(state, [first, second])
    arrived = _state({0: 2, 2: 3})  # two more of person 0, three of a new person
    state.points.update({(f"new-{v}", t): StrangerPoint(f"new-{v}", p.etag, t, p.faces,
                                                         p.face, p.vector)
                         for (v, t), p in arrived.points.items()})
    regroup(state, Grouping())
    members = {video for video, _ in state.groups[merged].members}
    assert {"new-v0-0", "new-v0-1"} <= members and not any("v2" in m for m in members)
    assert len(state.groups) == 2, "the new person is a group of their own"


def test_the_state_round_trips() -> None:
    state = _state({0: 3})
    state.videos = {"v0-0": ("etag", 2)}
    regroup(state, Grouping())
    again = StrangerState.from_doc(state.to_doc())
    assert again.groups == state.groups and again.videos == state.videos
    assert set(again.points) == set(state.points)
    for ref, point in state.points.items():
        assert np.array_equal(again.points[ref].vector, point.vector)
    with pytest.raises(FacereelError, match="not a grouping"):
        StrangerState.from_doc({"format": "other"})
