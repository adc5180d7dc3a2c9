"""dlib's HOG + linear SVM frontal face detector.

It finds faces whose box is about 75 px and wider in the grey image it is given (its scanning
window is 80 x 80), so callers run it on a downscaled frame sized for the smallest face they
care about (or upsample) and map the boxes back.

Its options are in its own units, the SVM margin: `min_score` (-0.5) keeps weak detections so a
face is followed through hard frames, and `face_score` (0.0) is what a followed face must reach
once to count as a face. Scores leave this backend mapped to 0..1 by the logistic function
`1 / (1 + exp(-2 * margin))`: strictly increasing, so every comparison between scores (and
with `face_score`, mapped the same way) decides exactly as the margins did; margin 0 -> 0.5,
-0.5 -> 0.27, 1 -> 0.88, 2 -> 0.98.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from facereel.core.faces.base import BackendOptions, ColourMode, register_detector
from facereel.core.faces.options import parse_options
from facereel.core.types import Detection, ImageArray

MARGIN_SLOPE = 2.0  # of the logistic mapping margins to 0..1: spreads margins -1..2 over it
MIN_FACE_PX = 75  # the ROI search shrinks a followed face to this width (about the window)
PREFERRED_SIZE = 480  # short side: faces of ~16% of it and larger; 22 ms per frame here


def margin_to_score(margin: float) -> float:
    """dlib's SVM margin as a 0..1 score (monotone; see the module docstring)."""
    return 1.0 / (1.0 + math.exp(-MARGIN_SLOPE * margin))


@dataclass(frozen=True, slots=True)
class HogOptions:
    min_score: float = -0.5  # SVM margin: detections below it are dropped
    face_score: float = 0.0  # SVM margin a followed face must reach once to count as a face
    upsample: int = 0  # times dlib doubles the image first (finds 2x smaller faces, 4x slower)

    def __post_init__(self) -> None:
        if not 0 <= self.upsample <= 3:
            raise ValueError(f"upsample must be 0..3, got {self.upsample}")


@register_detector("hog")
class HogDetector:
    name: ClassVar[str] = "hog"
    input: ClassVar[ColourMode] = "gray"

    def __init__(self, options: HogOptions | None = None) -> None:
        self.options = options or HogOptions()
        self._detector: Any = None

    @classmethod
    def from_options(cls, raw: Mapping[str, Any], shared: BackendOptions) -> HogDetector:
        return cls(parse_options(HogOptions, raw, "detector 'hog'"))

    @property
    def min_face_px(self) -> int:
        return MIN_FACE_PX >> self.options.upsample

    @property
    def preferred_size(self) -> int:
        return PREFERRED_SIZE

    @property
    def presence_score(self) -> float:
        return margin_to_score(self.options.face_score)

    def load(self) -> None:
        if self._detector is None:
            import dlib

            self._detector = dlib.get_frontal_face_detector()

    def detect(self, image: ImageArray) -> list[Detection]:
        self.load()
        # dlib needs a C-contiguous array; views of decoded planes often are not.
        rects, scores, _ = self._detector.run(
            np.ascontiguousarray(image), self.options.upsample, self.options.min_score
        )
        return [
            Detection((r.left(), r.top(), r.right() + 1, r.bottom() + 1), margin_to_score(score))
            for r, score in zip(rects, scores, strict=True)
        ]
