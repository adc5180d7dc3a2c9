"""Face detection, alignment and embedding behind named, pluggable backends.

`FaceModels` bundles the three chosen backends and the detection scale; it is built once per
process (constructors are cheap, `load()` reads the weights) and shared by every frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facereel.core.faces import align, embed_dlib, embed_onnx, hog  # noqa: F401  (built-ins)
from facereel.core.faces.base import (
    Aligner,
    BackendOptions,
    Detector,
    Embedder,
    make_aligner,
    make_detector,
    make_embedder,
)
from facereel.core.media import Picture
from facereel.core.types import Box, Detection, FloatArray, ImageArray, scale_box

@dataclass(frozen=True, slots=True)
class FaceConfig:
    detector: str = "hog"
    embedder: str = "dlib-resnet"
    runtime: str = "onnx"
    detect_size: int = 480  # short side, in pixels, of the frame the detector sees (0 = full)
    min_face_px: int = 0  # faces narrower than this (full-resolution pixels) are ignored
    options: BackendOptions = BackendOptions()


class FaceModels:
    def __init__(self, config: FaceConfig) -> None:
        self.config = config
        self.detector: Detector = make_detector(config.detector, config.options)
        self.embedder: Embedder = make_embedder(config.embedder, config.runtime, config.options)
        self.aligner: Aligner = make_aligner(self.embedder.aligner, config.options)

    def load(self) -> FaceModels:
        self.detector.load()
        self.aligner.load()
        self.embedder.load()
        return self

    @property
    def embedder_id(self) -> str:
        return self.embedder.model

    def detection_scale(self, width: int, height: int) -> float:
        size = self.config.detect_size
        return 1.0 if size <= 0 else min(1.0, size / max(1, min(width, height)))

    def detect(self, picture: Picture, roi: Box | None = None) -> list[Detection]:
        """Faces in `picture` (full-resolution boxes); only inside `roi` when given."""
        scale = self.detection_scale(picture.width, picture.height)
        gray = picture.gray(scale)
        offset_x = offset_y = 0
        if roi is not None:
            left, top, right, bottom = (round(v * scale) for v in roi)
            left, top = max(0, left), max(0, top)
            gray = gray[top : max(top, bottom), left : max(left, right)]
            offset_x, offset_y = left, top
            if gray.shape[0] < 40 or gray.shape[1] < 40:
                return []
        found = self.detector.detect(gray)
        factor = 1.0 / scale
        detections = []
        for det in found:
            l, t, r, b = det.box
            box = scale_box(
                (l + offset_x, t + offset_y, r + offset_x, b + offset_y),
                factor,
                picture.width,
                picture.height,
            )
            if box[2] - box[0] >= max(1, self.config.min_face_px):
                detections.append(Detection(box, det.score))
        return detections

    def embed(self, rgb: ImageArray, boxes: Sequence[Box]) -> FloatArray:
        if not boxes:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return self.embedder.embed(self.aligner.chips(rgb, boxes))
