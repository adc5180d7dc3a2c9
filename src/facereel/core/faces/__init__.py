"""Face detection, alignment and embedding behind named, pluggable backends.

`FaceModels` bundles the three chosen backends and the detection scale; it is built once per
process (constructors are cheap, `load()` reads the weights) and shared by every frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from facereel.core.faces import align, embed_dlib, embed_onnx, hog  # noqa: F401  (built-ins)
from facereel.core.faces.base import (
    Aligner,
    BackendOptions,
    Detector,
    Embedder,
    detector_names,
    embedder_names,
    make_aligner,
    make_detector,
    make_embedder,
)
from facereel.core.media import Picture
from facereel.core.shots import FaceShot
from facereel.core.types import Box, Detection, FloatArray, ImageArray, scale_box

MAX_UPSCALE = 2.0
MIN_ROI_PX = 40  # a search region smaller than this (at detection scale) cannot hold a face
ROI_FACE_PX = 75  # a face being followed is searched for at about this width


@dataclass(frozen=True, slots=True)
class FaceConfig:
    detector: str = "hog"
    embedder: str = "dlib-resnet"
    runtime: str = "onnx"
    detect_size: int = 480  # short side, in pixels, of the frame the detector sees (0 = full)
    min_face_px: int = 0  # faces narrower than this (full-resolution pixels) are ignored
    options: BackendOptions = field(default_factory=BackendOptions)


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
        """Scale that gives the detector a frame whose short side is `detect_size` (small
        frames are enlarged up to 2x, so their faces reach the detector's ~80 px window)."""
        size = self.config.detect_size
        return 1.0 if size <= 0 else min(MAX_UPSCALE, size / max(1, min(width, height)))

    def detect(self, picture: Picture, roi: Box | None = None,
               face_px: int = 0) -> list[Detection]:
        """Faces in `picture` (full-resolution boxes); only inside `roi` when given, looking
        for a face about `face_px` wide (full-resolution pixels) when that is known."""
        scale = self.detection_scale(picture.width, picture.height)
        gray = picture.gray(scale)
        if roi is None:
            return self._to_full(self.detector.detect(gray), scale, (0, 0), 1.0, picture)
        left, top = max(0, round(roi[0] * scale)), max(0, round(roi[1] * scale))
        crop = gray[top : max(top, round(roi[3] * scale)), left : max(left, round(roi[2] * scale))]
        # Shrink the region so the expected face is ~ROI_FACE_PX wide: the detector then skips
        # pyramid levels that could not hold it (4-8x less work for a close-up).
        shrink = min(1.0, ROI_FACE_PX / max(1.0, face_px * scale)) if face_px else 1.0
        if shrink < 1.0:
            size = (max(1, round(crop.shape[1] * shrink)), max(1, round(crop.shape[0] * shrink)))
            crop = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
        if min(crop.shape[:2]) < MIN_ROI_PX:
            return []
        return self._to_full(self.detector.detect(crop), scale, (left, top), shrink, picture)

    def _to_full(self, found: list[Detection], scale: float, offset: tuple[int, int],
                 shrink: float, picture: Picture) -> list[Detection]:
        """Map boxes from a (cropped, shrunk) detection image back to full resolution."""
        detections = []
        for det in found:
            left, top, right, bottom = (v / shrink for v in det.box)
            x, y = offset
            box = scale_box((left + x, top + y, right + x, bottom + y),
                            1.0 / scale, picture.width, picture.height)
            if box[2] - box[0] >= max(1, self.config.min_face_px):
                detections.append(Detection(box, det.score))
        return detections

    def embed(self, rgb: ImageArray, boxes: Sequence[Box]) -> FloatArray:
        """Embeddings of the faces at `boxes` in a full-resolution RGB image."""
        if not boxes:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return self.embedder.embed(self.aligner.chips(rgb, boxes))

    def embed_shots(self, shots: Sequence[FaceShot]) -> FloatArray:
        """Embeddings of face shots, in one batch."""
        if not shots:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        chips = [chip for s in shots for chip in self.aligner.chips(s.image, [s.face])]
        return self.embedder.embed(chips)


def prepare_models(options: BackendOptions) -> list[str]:
    """Build every converted model into `options.cache_dir` ahead of time (an image build), so
    a read-only deployment never converts: every registered detector and every embedder not
    run by dlib itself is loaded, and a load converts and caches what its backend needs.
    Returns what was loaded, e.g. `embedder dlib-resnet (onnx)`."""
    prepared = []
    for name in detector_names():
        make_detector(name, options).load()
        prepared.append(f"detector {name}")
    for model, runtime in embedder_names():
        if runtime != "dlib":  # dlib reads its own weights files: nothing to convert
            make_embedder(model, runtime, options).load()
            prepared.append(f"embedder {model} ({runtime})")
    return prepared
