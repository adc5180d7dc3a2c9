"""Cheap appearance: looks tell the same face a moment later from another face; scene changes
tell a cut from a still shot; the tracker ends a track whose place another face took."""

from __future__ import annotations

import numpy as np

from facereel.core.analysis import CUT_SCORE, LOOK_JUMP
from facereel.core.appearance import look_at, look_distance, scene_change, scene_of
from facereel.core.tracking import Tracker
from facereel.core.types import Box, Detection, ImageArray
from tests.support.scripted import Face, FakePicture, Movie, Shot, face_pattern

BOX: Box = (60, 20, 100, 60)


def _frame(person: int, box: Box = BOX, gain: float = 1.0, offset: float = 0.0) -> ImageArray:
    pixels = np.full((108, 192), 120, dtype=np.uint8)
    pixels[box[1]:box[3], box[0]:box[2]] = face_pattern(Face(person, box, 0, 1), (40, 40))
    return np.asarray(np.clip(pixels * gain + offset, 0, 255), dtype=np.uint8)


def test_a_look_survives_jitter_and_lighting_but_not_another_face() -> None:
    look = look_at(_frame(1), 1.0, BOX)
    assert look_distance(look, _frame(1), 1.0, BOX) < 0.01
    moved: Box = (63, 22, 103, 62)  # the face moved 3 px, its box did not follow exactly
    assert look_distance(look, _frame(1, moved, gain=0.8, offset=30), 1.0, BOX) < 0.1
    assert look_distance(look, _frame(2), 1.0, BOX) > LOOK_JUMP


def test_a_look_at_the_frame_edge_is_still_defined() -> None:
    corner: Box = (0, 0, 40, 40)
    look = look_at(_frame(1, corner), 1.0, corner)
    assert look.template.shape == (24, 24)
    assert look_distance(look, _frame(1, corner), 1.0, corner) < 0.05


def test_scene_change_tells_a_cut_from_the_same_shot() -> None:
    movie = Movie([Shot(1, 0.0, 1.0), Shot(2, 1.0, 2.0)])
    first, same, other = (scene_of(FakePicture(t, movie.frame(t))) for t in (0.0, 0.5, 1.0))
    assert scene_change(first, same) == 0.0
    assert scene_change(first, other) == scene_change(other, first) > CUT_SCORE


def test_the_tracker_ends_a_track_whose_place_another_face_took() -> None:
    tracker = Tracker(max_gap_s=1.0)
    here, there = Detection((0, 0, 10, 10), 1.0), Detection((50, 0, 60, 10), 1.0)
    tracker.update(0.0, [here, there])
    update = tracker.update(0.5, [here, there], alike=lambda track, det: det.box[0] == 50)
    [(old, new)] = update.replaced
    assert old.closed and old not in tracker.active and new in tracker.active
    assert [t.id for t, _ in update.continued] == [1] and update.missed == []
    assert [t.id for t, _ in update.new] == [new.id] == [2]
