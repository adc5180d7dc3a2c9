"""Records shared across the core.

Boxes are always `(left, top, right, bottom)` in pixels of the full-resolution, upright image
(rotation metadata already applied), right/bottom exclusive. Distances are Euclidean between
embeddings of the same embedder; smaller means more alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Box = tuple[int, int, int, int]
FloatArray = npt.NDArray[np.float32]
ImageArray = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Detection:
    """A face found by a detector, in full-resolution pixel coordinates."""

    box: Box  # clipped to the frame
    score: float
    inside: float = 1.0  # the fraction of the face's box (before clipping) inside the frame


def box_area(box: Box) -> int:
    left, top, right, bottom = box
    return max(0, right - left) * max(0, bottom - top)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    inter: Box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    overlap = box_area(inter) if inter[2] > inter[0] and inter[3] > inter[1] else 0
    union = box_area(a) + box_area(b) - overlap
    return overlap / union if union > 0 else 0.0


def scale_box(
    box: tuple[float, float, float, float], factor: float, width: int, height: int
) -> Box:
    """Map a box found on a resized image back to full resolution, clipped to the image."""
    left, top, right, bottom = (round(v * factor) for v in box)
    return (
        min(max(left, 0), width),
        min(max(top, 0), height),
        min(max(right, 0), width),
        min(max(bottom, 0), height),
    )
