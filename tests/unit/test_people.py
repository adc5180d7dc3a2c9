"""Identification's safety net: a track whose shots show two people is credited to each for
its own part only."""

from __future__ import annotations

import numpy as np

from facereel.core.gallery import Gallery
from facereel.core.match import MatchPolicy
from facereel.core.people import split_disagreeing, summarize
from facereel.core.tracking import Observation, Track
from facereel.core.types import FloatArray

ADA, BOB = np.array([0.0, 0.0], np.float32), np.array([1.0, 0.0], np.float32)


def _gallery() -> Gallery:
    gallery = Gallery("m", 2)
    gallery.add("ada", ADA[None, :])
    gallery.add("bob", BOB[None, :])
    return gallery


def _track(shots: list[tuple[float, FloatArray]], end_s: float) -> Track:
    """On screen from 0 to `end_s`, seen every 0.5 s, shot at the given times."""
    observations = [Observation(i * 0.5, (0, 0, 10, 10), 1.0) for i in range(int(end_s * 2) + 1)]
    return Track(0, observations, shot_times=[t for t, _ in shots],
                 embeddings=[v + 0.01 for _, v in shots], first_s=0.0, last_s=end_s)


def test_a_track_whose_shots_disagree_is_split_between_them() -> None:
    track = _track([(0.0, ADA), (1.0, ADA), (2.0, BOB), (3.0, BOB)], end_s=3.2)
    first, second = split_disagreeing(track, MatchPolicy().threshold)
    assert (first.first_s, first.last_s, second.first_s, second.last_s) == (0.0, 1.5, 1.5, 3.2)
    assert first.shot_times == [0.0, 1.0] and second.shot_times == [2.0, 3.0]
    assert [o.time_s for o in first.observations] == [0.0, 0.5, 1.0]
    assert second.observations[0].time_s == 1.5
    agreeing = _track([(0.0, ADA), (1.0, ADA)], 1.5)
    assert split_disagreeing(agreeing, 0.6) == [agreeing]


def test_each_person_gets_only_their_part_of_a_track() -> None:
    track = _track([(0.0, ADA), (1.0, ADA), (2.0, BOB)], end_s=3.0)
    summary = summarize([track], _gallery(), MatchPolicy(threshold=0.6), gap_s=1.0)
    found = {p.person: [(a.start_ms, a.end_ms) for a in p.appearances] for p in summary.people}
    assert found == {"ada": [(0, 1500)], "bob": [(1500, 3000)]}


def test_spans_are_cut_where_the_track_parts() -> None:
    track = _track([(0.0, ADA), (3.0, BOB)], end_s=4.0)
    track.spans, track.first_s = [(0.0, 1.0)], 2.0  # unseen from 1 to 2 s
    first, second = split_disagreeing(track, 0.6)
    assert first.all_spans() == [(0.0, 1.0)]
    assert second.all_spans() == [(2.0, 4.0)]
