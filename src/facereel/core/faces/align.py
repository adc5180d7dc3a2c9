"""Five-point landmarks and face chips for dlib's ResNet face model.

The chip is exactly what dlib's `compute_face_descriptor` feeds its network: the face warped by
its 5 landmarks to 150x150 with 25% padding (`dlib.get_face_chip`), so any runtime that embeds
these chips reproduces dlib's vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from facereel.core.faces.base import BackendOptions, register_aligner
from facereel.core.faces.model_files import model_file
from facereel.core.types import Box, ImageArray

SHAPE_PREDICTOR_5 = "shape_predictor_5_face_landmarks.dat"
CHIP_SIZE = 150
CHIP_PADDING = 0.25


@register_aligner("dlib-5point")
class FivePointAligner:
    name: ClassVar[str] = "dlib-5point"

    def __init__(self, options: BackendOptions) -> None:
        self._models_dir = options.models_dir
        self._predictor: Any = None

    def load(self) -> None:
        if self._predictor is None:
            import dlib

            self._predictor = dlib.shape_predictor(
                str(model_file(SHAPE_PREDICTOR_5, self._models_dir))
            )

    def landmarks(self, rgb: ImageArray, box: Box) -> Any:
        """dlib's `full_object_detection` for one face box (5 points)."""
        import dlib

        self.load()
        left, top, right, bottom = box
        # dlib rectangles are inclusive of their right/bottom pixel.
        return self._predictor(rgb, dlib.rectangle(left, top, right - 1, bottom - 1))

    def chips(self, rgb: ImageArray, boxes: Sequence[Box]) -> list[ImageArray]:
        import dlib

        rgb = np.ascontiguousarray(rgb)
        return [
            np.asarray(
                dlib.get_face_chip(rgb, self.landmarks(rgb, box), CHIP_SIZE, CHIP_PADDING),
                dtype=np.uint8,
            )
            for box in boxes
        ]
