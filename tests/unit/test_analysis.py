"""The analysis loop itself, on scripted movies: synthetic frames with known shots and faces, and
a detector that finds exactly those faces (tests/support/scripted.py). Scene changes and face
looks are measured on the frames' real pixels."""

from __future__ import annotations

import pytest

from facereel.core.analysis import CUT_SCORE, LOOK_DOUBT, LOOK_JUMP, Analysis, Analyzer
from facereel.core.appearance import look_at, look_distance, scene_change, scene_of
from facereel.core.sampling import SamplingPlan, parse_sampling
from tests.support.scripted import (
    Face,
    FakePicture,
    Movie,
    ScriptedFinder,
    Shot,
    ShotLog,
)

PLAN = SamplingPlan()  # adaptive: every 0.5 s, changes timed to 0.25 s
BOX = (78, 30, 114, 66)  # a 36-pixel face in the middle of the 192 x 108 frame
ASIDE = (10, 40, 46, 76)


def analyse(movie: Movie, plan: SamplingPlan = PLAN, pictures: list[FakePicture] | None = None,
            max_gap_s: float = 1.0) -> tuple[Analysis, ScriptedFinder, ShotLog]:
    finder, log = ScriptedFinder(movie), ShotLog()
    analyzer = Analyzer(finder, plan, log, max_gap_s=max_gap_s)
    return analyzer.run(pictures or movie.pictures()), finder, log


def frame_at(movie: Movie, time_s: float) -> FakePicture:
    return FakePicture(time_s, movie.frame(time_s))


def look_change(movie: Movie, before_s: float, after_s: float) -> float:
    """The look distance the analysis will see for the face at BOX between two samples."""
    before, after = frame_at(movie, before_s), frame_at(movie, after_s)
    return look_distance(look_at(before.gray(1.0), 1.0, BOX), after.gray(1.0), 1.0, BOX)


def test_an_appearance_and_a_departure_are_timed_to_the_precision() -> None:
    face = Face(1, BOX, 1.3, 2.6)
    movie = Movie([Shot(1, 0.0, 4.0)], [face])
    analysis, _, log = analyse(movie)
    [track] = analysis.tracks
    first, last = movie.first_frame_with(face), movie.last_frame_with(face)
    # timed on the side where the face is visible, at most `precision` away from the change
    assert first <= track.first_s <= first + PLAN.precision_s
    assert last - PLAN.precision_s <= track.last_s <= last
    assert track.spans == []
    assert [time for _, time in log.shots] == track.shot_times


def test_a_cut_ends_every_track_and_the_faces_after_it_start_new_ones() -> None:
    before, after = Face(1, BOX, 0.0, 2.2), Face(2, BOX, 2.2, 4.0)  # one place, two people
    stays = [Face(3, ASIDE, 0.0, 2.2), Face(3, ASIDE, 2.2, 4.0)]  # one person, both shots
    movie = Movie([Shot(1, 0.0, 2.2), Shot(2, 2.2, 4.0)], [before, after, *stays])
    analysis, _, log = analyse(movie)
    cut = movie.first_frame_with(after)
    assert scene_change(scene_of(frame_at(movie, 2.0)), scene_of(frame_at(movie, 2.5))) > CUT_SCORE
    assert len(analysis.tracks) == 4
    for track in analysis.tracks:
        [(start, end)] = track.all_spans()
        if track.observations[0].time_s < cut:
            # ended at the last buffered frame before the cut (they are ~precision/3 apart)
            assert start == 0.0 and cut - PLAN.precision_s / 2 <= end < cut
            assert track.closed and track.observations[-1].time_s < cut
        else:
            assert start == cut and end == movie.last_frame_with(after)
            assert track.shot_times[0] >= cut  # shot as soon as seen after the cut
    assert len({track_id for track_id, _ in log.shots}) == 4


def test_another_face_in_the_same_place_ends_the_track() -> None:
    one, two = Face(1, BOX, 0.0, 2.2), Face(2, BOX, 2.2, 4.0)
    movie = Movie([Shot(1, 0.0, 4.0)], [one, two])
    assert scene_change(scene_of(frame_at(movie, 2.0)), scene_of(frame_at(movie, 2.5))) < CUT_SCORE
    assert look_change(movie, 2.0, 2.5) >= LOOK_JUMP
    analysis, _, _ = analyse(movie)
    first, second = analysis.tracks
    switch = movie.first_frame_with(two)
    assert first.closed
    assert switch - PLAN.precision_s <= first.last_s < switch
    assert switch <= second.first_s <= switch + PLAN.precision_s
    assert first.shot_times[-1] < switch <= second.shot_times[0]


def test_a_doubtful_look_is_shot_on_both_sides() -> None:
    one, closer = Face(1, BOX, 0.0, 2.2), Face(1, BOX, 2.2, 4.0, like=(2, 0.65))
    movie = Movie([Shot(1, 0.0, 4.0)], [one, closer])
    assert LOOK_DOUBT <= look_change(movie, 2.0, 2.5) < LOOK_JUMP
    analysis, _, _ = analyse(movie)
    [track] = analysis.tracks  # not sure enough to end it...
    assert {2.0, 2.5} <= set(track.shot_times)  # ...but identification will see both faces


def test_light_samples_follow_a_moving_face_around_where_it_was() -> None:
    face = Face(1, (20, 30, 56, 66), 0.0, 4.0, velocity=(25.0, 0.0))  # 12 px per sample
    movie = Movie([Shot(1, 0.0, 4.0)], [face])
    analysis, finder, _ = analyse(movie)
    [track] = analysis.tracks
    assert len(track.observations) == analysis.frames_sampled
    assert all(o.box == face.box_at(o.time_s) for o in track.observations)
    full = [time for time, region in finder.calls if region is None]
    assert len(full) == analysis.full_detections < analysis.frames_sampled
    light = [time for time, region in finder.calls if region is not None]
    assert set(light) - set(full), "some samples only searched around the face"


def test_a_face_back_within_the_gap_continues_its_track_with_a_second_span() -> None:
    leaves, returns = Face(1, BOX, 0.0, 1.2), Face(1, BOX, 1.8, 3.5)
    movie = Movie([Shot(1, 0.0, 4.0)], [leaves, returns])
    analysis, _, _ = analyse(movie, max_gap_s=1.0)
    [track] = analysis.tracks
    (start1, end1), (start2, end2) = track.all_spans()
    assert start1 == 0.0
    assert movie.last_frame_with(leaves) - PLAN.precision_s <= end1 <= movie.last_frame_with(leaves)
    first_back = movie.first_frame_with(returns)
    assert first_back <= start2 <= first_back + PLAN.precision_s
    assert movie.last_frame_with(returns) - PLAN.precision_s <= end2


def test_a_face_back_after_the_gap_is_a_new_track() -> None:
    leaves, returns = Face(1, BOX, 0.0, 1.0), Face(1, BOX, 2.6, 4.0)
    movie = Movie([Shot(1, 0.0, 4.0)], [leaves, returns])
    analysis, _, _ = analyse(movie, max_gap_s=1.0)
    first, second = analysis.tracks
    assert first.closed and len(first.all_spans()) == len(second.all_spans()) == 1
    assert movie.first_frame_with(returns) <= second.first_s


def test_first_mode_looks_at_the_first_frame_only() -> None:
    movie = Movie([Shot(1, 0.0, 2.0)], [Face(1, BOX, 0.0, 2.0)])
    analysis, finder, log = analyse(movie, parse_sampling("first"))
    assert analysis.frames_decoded == analysis.frames_sampled == 1
    [track] = analysis.tracks
    assert (track.first_s, track.last_s) == (0.0, 0.0)
    assert finder.calls == [(0.0, None)] and log.shots == [(0, 0.0)]


def test_each_track_s_first_shot_alone_is_embedded_with_its_mirror() -> None:
    stays, leaves = Face(1, BOX, 0.0, 3.0), Face(2, ASIDE, 0.0, 0.8)
    movie = Movie([Shot(1, 0.0, 3.0)], [stays, leaves])
    analysis, _, log = analyse(movie)
    first, second = analysis.tracks
    assert len(first.shot_times) >= 2 and len(second.shot_times) == 1
    assert log.mirrored == [(0, 0.0), (1, 0.0)], "later shots are votes of their own"


def test_a_face_cut_by_the_frame_s_edge_is_shot_again_only_once_whole() -> None:
    movie = Movie([Shot(1, 0.0, 4.0)], [Face(1, BOX, 0.0, 4.0)])
    whole, _, _ = analyse(movie)
    assert whole.tracks[0].shot_times == [0.0, 1.0], "a second vote a second later"
    finder, log = ScriptedFinder(movie, cut=(0.9, 2.2)), ShotLog()
    analysis = Analyzer(finder, PLAN, log).run(movie.pictures())
    [track] = analysis.tracks
    assert track.shot_times == [0.0, 2.5], "the vote due at 1 s waits for the whole face"
    assert track.all_spans() == whole.tracks[0].all_spans(), "followed all the same"
    cut_at_first = ScriptedFinder(movie, cut=(0.0, 4.0))
    analysis = Analyzer(cut_at_first, PLAN, ShotLog()).run(movie.pictures())
    assert analysis.tracks[0].shot_times == [0.0], "a track always has its first shot"


def test_keyframes_mode_analyses_every_picture_it_is_given() -> None:
    before, after = Face(1, BOX, 0.0, 2.2), Face(2, BOX, 2.2, 4.0)
    movie = Movie([Shot(1, 0.0, 2.2), Shot(2, 2.2, 4.0)], [before, after])
    keyframes = movie.pictures()[::12]  # one every 0.5 s, nothing decoded between them
    analysis, finder, _ = analyse(movie, parse_sampling("keyframes"), keyframes)
    assert analysis.frames_sampled == len(keyframes) == len(finder.calls)
    first, second = analysis.tracks
    # nothing between keyframes to time a change by: the change lies between two keyframes
    assert (first.first_s, first.last_s) == (0.0, 2.0)
    assert (second.first_s, second.last_s) == (2.5, keyframes[-1].time_s)


@pytest.mark.parametrize("mode", ["adaptive", "fps=2", "all"])
def test_a_face_on_screen_throughout_is_one_track(mode: str) -> None:
    face = Face(1, BOX, 0.0, 3.0, velocity=(-10.0, 5.0))
    movie = Movie([Shot(1, 0.0, 3.0)], [face])
    analysis, _, _ = analyse(movie, parse_sampling(mode))
    [track] = analysis.tracks
    assert track.all_spans() == [(0.0, movie.last_frame_with(face))]


def test_faces_that_leave_before_a_cut_or_come_after_it_are_timed_by_their_own_change() -> None:
    left, late = Face(1, BOX, 0.0, 1.9), Face(2, BOX, 2.4, 4.0)
    movie = Movie([Shot(1, 0.0, 2.2), Shot(2, 2.2, 4.0)], [left, late])
    analysis, _, _ = analyse(movie)
    first, second = analysis.tracks
    gone = movie.last_frame_with(left)
    assert gone - PLAN.precision_s <= first.last_s <= gone < 2.2
    assert 2.2 < movie.first_frame_with(late) <= second.first_s
    assert second.first_s <= movie.first_frame_with(late) + PLAN.precision_s
