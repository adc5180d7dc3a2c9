"""Synthetic face embeddings spread like dlib-resnet's, for index tests and bench/index.py.

dlib-resnet's vectors are not unit vectors: the 11 people of the CSE546 `encoding` have norms
1.28-1.48 around a common mean of norm 1.29, each 0.52-0.71 from it (0.05 per dimension),
0.65-1.04 apart (median 0.85). Identities here are centres drawn around such a mean with that
spread; each face is its centre plus noise of a length drawn uniformly from FACE_NOISE, so two
faces of one identity are about 0.05-0.45 apart (what re-encodings of one clip measure) and
faces of different identities about 0.55 and up. bench/index.py prints the distributions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facereel.core.types import FloatArray

DIM = 128
MEAN_NORM = 1.29
CENTRE_SPREAD = 0.053  # per dimension: centres ~0.60 from the mean, ~0.85 from each other
FACE_NOISE = (0.035, 0.30)  # a face's distance from its identity's centre
BLOCK = 10_000  # identities generated at once (bounded memory for a million faces)


@dataclass(frozen=True, slots=True)
class SyntheticFaces:
    centres: FloatArray  # identities x DIM
    vectors: FloatArray  # identity i's faces are rows i*faces .. (i+1)*faces - 1
    faces: int

    def identity(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return rows // self.faces


def default_mean(seed: int = 7) -> FloatArray:
    mean = np.random.default_rng(seed).normal(size=DIM)
    return (mean * MEAN_NORM / np.linalg.norm(mean)).astype(np.float32)


def synthetic_faces(identities: int, faces: int, seed: int = 0,
                    mean: FloatArray | None = None) -> SyntheticFaces:
    rng = np.random.default_rng(seed)
    centre = default_mean() if mean is None else mean
    centres = (centre + rng.normal(scale=CENTRE_SPREAD, size=(identities, DIM))).astype(
        np.float32)
    vectors = np.empty((identities * faces, DIM), dtype=np.float32)
    for start in range(0, identities, BLOCK):
        block = centres[start:start + BLOCK]
        noisy = faces_of(np.repeat(block, faces, axis=0), rng)
        vectors[start * faces:(start + len(block)) * faces] = noisy
    return SyntheticFaces(centres, vectors, faces)


def faces_of(centres: FloatArray, rng: np.random.Generator) -> FloatArray:
    """A new face of each given centre (a query the gallery has not seen)."""
    length = rng.uniform(*FACE_NOISE, size=(len(centres), 1))
    direction = rng.normal(size=centres.shape) / np.sqrt(DIM)
    faces: FloatArray = (centres + direction * length).astype(np.float32)
    return faces
