"""Face shots: the frames chosen for embedding, kept as a crop around the face.

Analysis (decode, detect, follow) picks *when* to look closely at a face; identification
(align, embed, match) happens later, in the same process or in another pipeline stage. A shot
carries everything identification needs: the face with some context around it (enough for the
5-point alignment), downscaled when the face is large, since the embedder only sees 150x150.

Which shots are taken does not depend on the gallery: a track is shot when first seen, then
again after `spacing_s` (up to `max_votes`), then every `reverify_s` while it lasts. So the same
video always yields the same shots, whichever gallery matches them, now or later.

A track's first shot is marked `mirror`: it is embedded as the mean of the face and its mirror
image. The first shot is often a track's only one (`first` and `keyframes` sampling, a still,
anyone on screen for under a second), and two views of one frame vote better than one: on the
108 first frames of the clips and re-encodings the true person's distance drops by 0.011 on
average, and the worst (test_75's Mr Bean with his eyes shut, 0.639) to 0.604. Later shots are
votes of their own, so they are not doubled (bench figures in the README, "Matching").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from facereel.core.tracking import Track
from facereel.core.types import Box, ImageArray

SHOT_MARGIN = 0.6  # face widths of context kept on each side
SHOT_FACE_PX = 200  # larger faces are stored downscaled so their box is this wide


@dataclass(frozen=True, slots=True)
class VotePolicy:
    max_votes: int = 2
    spacing_s: float = 1.0
    reverify_s: float = 5.0

    def wants(self, shot_times: list[float], now: float) -> bool:
        if not shot_times:
            return True
        since = now - shot_times[-1]
        if len(shot_times) < self.max_votes:
            return since >= self.spacing_s - 0.02
        return since >= self.reverify_s


@dataclass(slots=True)
class FaceShot:
    time_s: float
    box: Box  # the face in the full-resolution frame
    image: ImageArray  # RGB crop around the face
    face: Box  # the face inside `image`
    mirror: bool = False  # embed as the mean of the face and its mirror image (a first shot)


def capture(rgb: ImageArray, box: Box, time_s: float, mirror: bool = False) -> FaceShot:
    """Cut the face at `box` (with context) out of a full-resolution RGB frame."""
    height, width = rgb.shape[:2]
    left, top, right, bottom = box
    pad = round((right - left) * SHOT_MARGIN)
    x0, y0 = max(0, left - pad), max(0, top - pad)
    x1, y1 = min(width, right + pad), min(height, bottom + pad)
    crop = rgb[y0:y1, x0:x1]
    face = (left - x0, top - y0, right - x0, bottom - y0)
    scale = min(1.0, SHOT_FACE_PX / max(1, right - left))
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
        face = (round(face[0] * scale), round(face[1] * scale), round(face[2] * scale),
                round(face[3] * scale))
    return FaceShot(time_s, box, np.ascontiguousarray(crop, dtype=np.uint8), face, mirror)


class ShotSink(Protocol):
    """Where an analysis sends the shots it takes of each track."""

    def add(self, track: Track, shot: FaceShot) -> None: ...

    def flush(self) -> None: ...
