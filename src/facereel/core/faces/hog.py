"""dlib's HOG + linear SVM frontal face detector (the default detector).

It finds faces of roughly 80 px and larger in the image it is given, so callers run it on a
downscaled frame sized for the smallest face they care about and map the boxes back.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from facereel.core.faces.base import BackendOptions, register_detector
from facereel.core.types import Detection, ImageArray


@register_detector("hog")
class HogDetector:
    name: ClassVar[str] = "hog"

    def __init__(self, options: BackendOptions) -> None:
        self._min_score = options.min_score
        self._upsample = options.upsample
        self._detector: Any = None

    def load(self) -> None:
        if self._detector is None:
            import dlib

            self._detector = dlib.get_frontal_face_detector()

    def detect(self, image: ImageArray) -> list[Detection]:
        self.load()
        # dlib needs a C-contiguous array; views of decoded planes often are not.
        rects, scores, _ = self._detector.run(
            np.ascontiguousarray(image), self._upsample, self._min_score
        )
        return [
            Detection((r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(score))
            for r, score in zip(rects, scores, strict=True)
        ]
