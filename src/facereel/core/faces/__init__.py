"""Face detection, alignment and embedding behind named, pluggable backends.

`FaceModels` bundles the three chosen backends and the detection scale; it is built once per
process (constructors are cheap, `load()` reads the weights) and shared by every frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from facereel.core.faces import (  # noqa: F401  (the built-in backends register themselves)
    align,
    embed_dlib,
    embed_onnx,
    hog,
    retinaface,
)
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
from facereel.core.types import Box, Detection, FloatArray, ImageArray, box_area, scale_box

MAX_UPSCALE = 2.0
# A search region narrower than this many of the detector's smallest faces cannot hold one
# (HOG: 40 px for its 75 px faces).
MIN_ROI_FACES = 0.54
DEFAULT_DETECTOR = "retinaface"


@dataclass(frozen=True, slots=True)
class FaceConfig:
    detector: str = DEFAULT_DETECTOR
    embedder: str = "dlib-resnet"
    runtime: str = "onnx"
    # short side, in pixels, of the frame the detector sees: None = the detector's preferred
    # size, 0 = full resolution
    detect_size: int | None = None
    min_face_px: int = 0  # faces narrower than this (full-resolution pixels) are ignored
    options: BackendOptions = field(default_factory=BackendOptions)
    # the detector's own options as (name, value) pairs: a tuple keeps the config hashable
    detector_options: tuple[tuple[str, Any], ...] = ()

    def make_detector(self) -> Detector:
        """The configured detector (not loaded: cheap, and validates its options)."""
        return make_detector(self.detector, self.options, dict(self.detector_options))

    @property
    def presence_score(self) -> float:
        """0..1 score a followed face must reach once to count as a face (the detector's)."""
        return self.make_detector().presence_score


class FaceModels:
    def __init__(self, config: FaceConfig) -> None:
        self.config = config
        self.detector: Detector = config.make_detector()
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

    @property
    def presence_score(self) -> float:
        return self.detector.presence_score

    def detection_scale(self, width: int, height: int) -> float:
        """Scale that gives the detector a frame whose short side is `detect_size` (the
        detector's preferred size unless configured; small frames are enlarged up to 2x, so
        their faces reach the detector's smallest face size)."""
        size = self.config.detect_size
        if size is None:
            size = self.detector.preferred_size
        return 1.0 if size <= 0 else min(MAX_UPSCALE, size / max(1, min(width, height)))

    def detect(self, picture: Picture, roi: Box | None = None, face_px: int = 0,
               scale: float | None = None) -> list[Detection]:
        """Faces in `picture` (full-resolution boxes); only inside `roi` when given, looking
        for a face about `face_px` wide (full-resolution pixels) when that is known. `scale`
        overrides the detection scale (e.g. to look again at full size for a small face)."""
        if scale is None:
            scale = self.detection_scale(picture.width, picture.height)
        image = picture.gray(scale) if self.detector.input == "gray" else picture.color(scale)
        if roi is None:
            return self._to_full(self.detector.detect(image), scale, (0, 0), 1.0, picture)
        left, top = max(0, round(roi[0] * scale)), max(0, round(roi[1] * scale))
        crop = image[top : max(top, round(roi[3] * scale)),
                     left : max(left, round(roi[2] * scale))]
        # Shrink the region so the expected face is about the smallest the detector finds: it
        # then skips scales that could not hold it (4-8x less work for a close-up).
        smallest = self.detector.min_face_px
        shrink = min(1.0, smallest / max(1.0, face_px * scale)) if face_px else 1.0
        if shrink < 1.0:
            size = (max(1, round(crop.shape[1] * shrink)), max(1, round(crop.shape[0] * shrink)))
            crop = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
        if min(crop.shape[:2]) < round(MIN_ROI_FACES * smallest):
            return []
        return self._to_full(self.detector.detect(crop), scale, (left, top), shrink, picture)

    def _to_full(self, found: list[Detection], scale: float, offset: tuple[int, int],
                 shrink: float, picture: Picture) -> list[Detection]:
        """Map boxes from a (cropped, shrunk) detection image back to full resolution."""
        detections = []
        for det in found:
            left, top, right, bottom = (v / shrink for v in det.box)
            x, y = offset
            whole = (left + x, top + y, right + x, bottom + y)
            box = scale_box(whole, 1.0 / scale, picture.width, picture.height)
            if box[2] - box[0] >= max(1, self.config.min_face_px):
                area = max(1e-6, (whole[2] - whole[0]) * (whole[3] - whole[1]) / scale**2)
                detections.append(Detection(box, det.score, min(1.0, box_area(box) / area)))
        return detections

    def embed(self, rgb: ImageArray, boxes: Sequence[Box]) -> FloatArray:
        """Embeddings of the faces at `boxes` in a full-resolution RGB image."""
        if not boxes:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return self.embedder.embed(self.aligner.chips(rgb, boxes))

    def embed_shots(self, shots: Sequence[FaceShot]) -> FloatArray:
        """Embeddings of face shots, in one batch; a `mirror` shot's is the mean of its
        face's and of that face's mirror image (see core/shots.py)."""
        if not shots:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        chips = [chip for s in shots for chip in self.aligner.chips(s.image, [s.face])]
        doubled = [i for i, s in enumerate(shots) if s.mirror]
        vectors = self.embedder.embed(chips + [np.ascontiguousarray(chips[i][:, ::-1])
                                               for i in doubled])
        embeddings = vectors[:len(shots)].copy()
        embeddings[doubled] = (embeddings[doubled] + vectors[len(shots):]) / 2
        return embeddings


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
