from __future__ import annotations

import numpy as np

from facereel.core.gallery import Gallery
from facereel.core.match import MatchPolicy, decide, similarity
from facereel.core.people import merge_spans
from facereel.core.results import Appearance
from facereel.core.shots import VotePolicy
from facereel.core.tracking import Tracker, same_face
from facereel.core.types import Detection, box_iou


def _gallery() -> Gallery:
    gallery = Gallery("m", 2)
    gallery.add("near", np.array([[0.0, 0.0]], dtype=np.float32))
    gallery.add("far", np.array([[5.0, 0.0]], dtype=np.float32))
    return gallery


def test_median_of_votes_decides_and_one_outlier_does_not() -> None:
    policy = MatchPolicy(threshold=0.6)
    votes = [np.array([0.5, 0.0], np.float32), np.array([0.55, 0.0], np.float32),
             np.array([0.9, 0.0], np.float32)]
    decision = decide(_gallery(), votes, policy)
    assert decision.person == "near"
    assert abs(decision.distance - 0.55) < 1e-6
    assert decision.votes == 3


def test_open_set_nearest_stranger_is_unknown() -> None:
    decision = decide(_gallery(), [np.array([0.0, 2.0], np.float32)], MatchPolicy())
    assert decision.person is None
    assert decision.nearest == "near"
    assert decide(Gallery("m", 2), [np.zeros(2, np.float32)], MatchPolicy()).person is None


def test_similarity_scale() -> None:
    assert similarity(0.38) == 0.81
    assert similarity(5.0) == 0.0


def test_vote_policy_is_independent_of_the_gallery() -> None:
    votes = VotePolicy(max_votes=2, spacing_s=1.0, reverify_s=5.0)
    assert votes.wants([], 0.0)
    assert not votes.wants([0.0], 0.5)
    assert votes.wants([0.0], 1.0)
    assert not votes.wants([0.0, 1.0], 3.0)
    assert votes.wants([0.0, 1.0], 6.0)


def test_merge_spans_splits_only_on_real_gaps() -> None:
    spans = [(0.0, 1.0), (1.5, 2.0), (5.0, 6.0), (5.5, 7.0)]
    assert merge_spans(spans, 1.0) == [Appearance(0, 2000), Appearance(5000, 7000)]
    assert merge_spans(spans, 0.2) == [Appearance(0, 1000), Appearance(1500, 2000),
                                       Appearance(5000, 7000)]


def test_tracker_follows_a_moving_face_and_tells_new_from_missed() -> None:
    tracker = Tracker(max_gap_s=1.0)
    first = tracker.update(0.0, [Detection((100, 100, 200, 200), 1.0)])
    assert len(first.new) == 1
    moved = tracker.update(0.5, [Detection((140, 110, 240, 210), 1.0),
                                 Detection((500, 100, 600, 200), 1.0)])
    assert len(moved.continued) == 1 and len(moved.new) == 1
    gone = tracker.update(1.0, [])
    assert len(gone.missed) == 2
    assert len(tracker.close_stale(2.1)) == 2
    assert tracker.active == []


def test_same_face_rejects_far_or_differently_sized_boxes() -> None:
    assert same_face((0, 0, 100, 100), (10, 10, 110, 110))
    assert not same_face((0, 0, 100, 100), (300, 0, 400, 100))
    assert not same_face((0, 0, 100, 100), (0, 0, 300, 300))
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_clear_winner_rule_needs_a_distant_runner_up() -> None:
    policy = MatchPolicy(threshold=0.6, clear_slack=0.04, clear_margin=0.1)
    gallery = Gallery("m", 2)
    gallery.add("a", np.array([[0.0, 0.0]], dtype=np.float32))
    gallery.add("b", np.array([[0.0, 2.0]], dtype=np.float32))
    clear = decide(gallery, [np.array([0.62, 0.0], np.float32)], policy)
    assert clear.person == "a" and clear.runner_up > 0.72
    gallery.add("c", np.array([[1.3, 0.0]], dtype=np.float32))  # now a runner-up is close
    assert decide(gallery, [np.array([0.62, 0.0], np.float32)], policy).person is None
    alone = Gallery("m", 2)
    alone.add("a", np.array([[0.0, 0.0]], dtype=np.float32))
    assert decide(alone, [np.array([0.62, 0.0], np.float32)], policy).person is None, (
        "with one person enrolled there is no runner-up to be clear of"
    )


def test_a_stricter_threshold_is_stricter_even_for_a_clear_winner() -> None:
    gallery = Gallery("m", 2)
    gallery.add("a", np.array([[0.0, 0.0]], dtype=np.float32))
    gallery.add("b", np.array([[0.0, 2.0]], dtype=np.float32))
    face = [np.array([0.414, 0.0], np.float32)]  # 0.414 from a, ~2.04 from b: a clear winner
    assert decide(gallery, face, MatchPolicy()).person == "a"
    strict = decide(gallery, face, MatchPolicy(threshold=0.3))
    assert strict.person is None and strict.nearest == "a"
    assert decide(gallery, face, MatchPolicy(threshold=0.4)).person == "a", (
        "within the clear slack (0.02) of the threshold a clear winner is still accepted"
    )
    assert decide(gallery, face, MatchPolicy(threshold=0.39)).person is None
