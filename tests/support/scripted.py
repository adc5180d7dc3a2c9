"""A scripted movie for testing analysis without models: synthetic grey frames with known shots
(backgrounds) and faces (patterned squares), and a detector that finds exactly those faces.

The frames are real pixels, so what analysis measures from them (scene histograms, face looks)
is measured for real; only detection is scripted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

import numpy as np
from PIL import Image

from facereel.core.media import Picture
from facereel.core.shots import FaceShot
from facereel.core.tracking import Track
from facereel.core.types import Box, Detection, ImageArray

WIDTH, HEIGHT, FPS = 192, 108, 24.0


def _smooth(seed: int, size: tuple[int, int], cells: tuple[int, int], low: int,
            high: int) -> ImageArray:
    """Random grey cells (seeded) blown up smoothly to `size` (width, height)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(low, high, size=(cells[1], cells[0]), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BICUBIC))


def face_pattern(face: Face, size: tuple[int, int]) -> ImageArray:
    own = _smooth(1000 + face.person, size, (4, 5), 0, 255).astype(np.float32)
    other, weight = face.like
    if weight:
        own = (1 - weight) * own + weight * _smooth(1000 + other, size, (4, 5), 0, 255)
    return np.asarray(np.round(own), dtype=np.uint8)


@dataclass(frozen=True)
class Shot:
    """A stretch filmed in one place: its background is drawn from `scene` (a seed)."""

    scene: int
    start_s: float
    end_s: float  # exclusive


@dataclass(frozen=True)
class Face:
    """Someone (`person`, a pattern seed) on screen at `box` during [start_s, end_s), moving
    by `velocity` pixels per second."""

    person: int
    box: Box
    start_s: float
    end_s: float
    velocity: tuple[float, float] = (0.0, 0.0)
    like: tuple[int, float] = (0, 0.0)  # (another person, weight): a face part-way to theirs

    def box_at(self, time_s: float) -> Box:
        dx = round(self.velocity[0] * (time_s - self.start_s))
        dy = round(self.velocity[1] * (time_s - self.start_s))
        left, top, right, bottom = self.box
        return (left + dx, top + dy, right + dx, bottom + dy)


class FakePicture:
    """A Picture over a grey array (`rgb()` repeats it in three channels)."""

    def __init__(self, time_s: float, pixels: ImageArray) -> None:
        self.time_s = time_s
        self.height, self.width = pixels.shape
        self._pixels = pixels
        self._scaled: dict[float, ImageArray] = {}

    def gray(self, scale: float) -> ImageArray:
        if scale == 1.0:
            return self._pixels
        if scale not in self._scaled:
            size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
            image = Image.fromarray(self._pixels).resize(size, Image.Resampling.BOX)
            self._scaled[scale] = np.asarray(image)
        return self._scaled[scale]

    def rgb(self) -> ImageArray:
        return np.repeat(self._pixels[:, :, None], 3, axis=2)

    def color(self, scale: float) -> ImageArray:
        return np.repeat(self.gray(scale)[:, :, None], 3, axis=2)


@dataclass
class Movie:
    shots: list[Shot]
    faces: list[Face] = field(default_factory=list)
    fps: float = FPS

    @property
    def end_s(self) -> float:
        return max(s.end_s for s in self.shots)

    def times(self) -> list[float]:
        return [i / self.fps for i in range(ceil(self.end_s * self.fps - 1e-9))]

    def faces_at(self, time_s: float) -> list[tuple[Face, Box]]:
        return [(f, f.box_at(time_s)) for f in self.faces if f.start_s <= time_s < f.end_s]

    def frame(self, time_s: float) -> ImageArray:
        shot = next(s for s in self.shots if s.start_s <= time_s < s.end_s)
        pixels = _smooth(shot.scene, (WIDTH, HEIGHT), (8, 5), 40, 215).copy()
        for face, (left, top, right, bottom) in self.faces_at(time_s):
            pixels[top:bottom, left:right] = face_pattern(face, (right - left, bottom - top))
        return pixels

    def pictures(self) -> list[FakePicture]:
        return [FakePicture(t, self.frame(t)) for t in self.times()]

    def first_frame_with(self, face: Face) -> float:
        return min(t for t in self.times() if face.start_s <= t)

    def last_frame_with(self, face: Face) -> float:
        return max(t for t in self.times() if t < face.end_s)


class ScriptedFinder:
    """Finds exactly the movie's faces (score 1), in the whole frame or inside a region."""

    def __init__(self, movie: Movie, cut: tuple[float, float] = (0.0, 0.0)) -> None:
        self.movie = movie
        self.calls: list[tuple[float, Box | None]] = []  # (time, region or None for full)
        self.cut = cut  # between these times every face is a quarter outside the frame

    def detection_scale(self, width: int, height: int) -> float:
        return 1.0

    def detect(self, picture: Picture, roi: Box | None = None,
               face_px: int = 0) -> list[Detection]:
        self.calls.append((picture.time_s, roi))
        found = []
        for _, box in self.movie.faces_at(picture.time_s):
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            if roi is None or (roi[0] <= centre[0] < roi[2] and roi[1] <= centre[1] < roi[3]):
                inside = 0.75 if self.cut[0] <= picture.time_s < self.cut[1] else 1.0
                found.append(Detection(box, 1.0, inside))
        return found


class ShotLog:
    """A ShotSink that only notes which track was shot when."""

    def __init__(self) -> None:
        self.shots: list[tuple[int, float]] = []
        self.mirrored: list[tuple[int, float]] = []  # the shots to embed with their mirror

    def add(self, track: Track, shot: FaceShot) -> None:
        self.shots.append((track.id, shot.time_s))
        if shot.mirror:
            self.mirrored.append((track.id, shot.time_s))

    def flush(self) -> None:
        pass
