"""Cheap appearance: what a frame and a face look like, to tell when following must stop.

Two descriptors, both from grey pixels a video picture already has (no colour conversion, no
embedding), and both calibrated on the real clips by `bench/cuts.py` (figures in the README):

- a `Scene` (histograms of a 64-pixel-wide grey thumbnail, whole and per block) tells a cut
  from camera motion: `scene_change` between frames 0.5 s apart stays at or below 0.39 within
  the 8 clips and is at least 0.56 between frames of two different clips scaled to one size;
- a `Look` (a small grey template of the head) tells the same face a moment later from another
  face in the same place: `look_distance` between observations 0.5 s apart stays at or below
  0.27 within the clips, while two different people's faces are above 0.35 in 94% of pairs.

Identities are decided later, from embeddings; these only decide where a track must end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from facereel.core.media import Picture
from facereel.core.types import Box, FloatArray, ImageArray

THUMB_WIDTH = 64  # width of the grey thumbnail whose histograms tell a cut from camera motion
SCENE_BINS = 32  # grey levels of the whole thumbnail's histogram
BLOCK_GRID = 3  # ...and a BLOCK_GRID x BLOCK_GRID grid of block histograms (where the tones are)
BLOCK_BINS = 16


@dataclass(frozen=True, slots=True)
class Scene:
    """A frame's tones, cheaply: its grey thumbnail's histogram, whole and per block."""

    whole: FloatArray
    blocks: FloatArray


def _histogram(pixels: ImageArray, bins: int) -> FloatArray:
    counts = np.bincount(pixels.ravel() // (256 // bins), minlength=bins).astype(np.float32)
    return counts / max(1.0, float(counts.sum()))


def scene_of(picture: Picture) -> Scene:
    thumb = picture.gray(THUMB_WIDTH / max(1, picture.width))
    height, width = thumb.shape[:2]
    grid = BLOCK_GRID
    blocks = [_histogram(thumb[r * height // grid : (r + 1) * height // grid,
                               c * width // grid : (c + 1) * width // grid], BLOCK_BINS)
              for r in range(grid) for c in range(grid)]
    return Scene(_histogram(thumb, SCENE_BINS), np.stack(blocks))


def scene_change(a: Scene, b: Scene) -> float:
    """How different two frames' tones are (0..2): the whole frame's histogram difference plus
    the blocks' mean (clips framed alike share global tones but not where they lie)."""
    whole = 0.5 * float(np.abs(a.whole - b.whole).sum())
    blocks = 0.5 * float(np.abs(a.blocks - b.blocks).sum(axis=1).mean())
    return whole + blocks


# A look is a LOOK_SIDE-pixel square template covering LOOK_SPAN face widths (the head's outline
# and hair tell people apart better than the inner face at this size), compared by normalised
# correlation at the best of small shifts and scale changes, because detector boxes jitter by
# ~10% of a face width and come in size steps of ~1.2.
LOOK_SIDE = 24
LOOK_SPAN = 1.2
LOOK_SHIFT = 0.2  # face widths searched either way
LOOK_SCALES = (0.85, 1.0, 1.18)


@dataclass(frozen=True, slots=True)
class Look:
    """What a face looked like in one frame: a zero-mean, unit-norm grey template around its box,
    and the template pixels per frame pixel it was taken at."""

    template: FloatArray
    scale: float


def look_at(gray: ImageArray, gray_scale: float, box: Box) -> Look:
    """The look of the face at `box` (frame pixels) in `gray`, a copy of the frame scaled by
    `gray_scale`."""
    scale = LOOK_SIDE / (LOOK_SPAN * max(1, box[2] - box[0]))
    return Look(_normalised(_patch(gray, gray_scale, box, scale, LOOK_SIDE)), scale)


def look_distance(look: Look, gray: ImageArray, gray_scale: float, box: Box) -> float:
    """1 - the best correlation of `look` with the face at `box`: ~0 for the same face a moment
    later, ~0.6 typically for another person's (0..2)."""
    margin = round(LOOK_SHIFT * LOOK_SIDE / LOOK_SPAN)
    best = -1.0
    for factor in LOOK_SCALES:
        # sampled at the look's own scale (times a factor), so a face the same size in the
        # frame is the same size in both, whatever size the detector gave its box
        region = _patch(gray, gray_scale, box, look.scale * factor, LOOK_SIDE + 2 * margin)
        windows = _normalised(sliding_window_view(region, (LOOK_SIDE, LOOK_SIDE)))
        best = max(best, float(np.einsum("ijkl,kl->ij", windows, look.template).max()))
    return 1.0 - best


def _patch(gray: ImageArray, gray_scale: float, box: Box, scale: float, side: int) -> FloatArray:
    """A `side`-pixel square of `gray` centred on `box`, at `scale` patch pixels per frame pixel
    (edge pixels repeated beyond the frame)."""
    size = max(1, round(side / scale * gray_scale))
    left = round((box[0] + box[2]) / 2 * gray_scale - size / 2)
    top = round((box[1] + box[3]) / 2 * gray_scale - size / 2)
    height, width = gray.shape[:2]
    crop = gray[max(0, top) : max(0, min(height, top + size)),
                max(0, left) : max(0, min(width, left + size))]
    if crop.size == 0:
        return np.zeros((side, side), dtype=np.float32)
    pads = ((max(0, -top), size - crop.shape[0] - max(0, -top)),
            (max(0, -left), size - crop.shape[1] - max(0, -left)))
    if any(p for pair in pads for p in pair):
        crop = np.pad(crop, pads, mode="edge")
    resized = Image.fromarray(np.ascontiguousarray(crop)).resize((side, side),
                                                                 Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def _normalised(patches: FloatArray) -> FloatArray:
    """Zero mean and unit norm over the last two axes (a flat patch stays ~0)."""
    centred = patches - patches.mean(axis=(-2, -1), keepdims=True)
    norm = np.sqrt((centred * centred).sum(axis=(-2, -1), keepdims=True))
    return np.asarray(centred / (norm + 1e-3), dtype=np.float32)
