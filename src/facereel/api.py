"""The functional API re-exported from the package root."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from facereel.app.recognition import open_gallery
from facereel.config import Settings
from facereel.core.embedders import embedder_dim
from facereel.core.faces import FaceConfig, FaceModels
from facereel.core.gallery import Gallery
from facereel.core.media import ImagePicture, load_image
from facereel.core.recognize import Recognizer
from facereel.core.results import VideoResult
from facereel.core.types import Box, FloatArray, ImageArray


@dataclass(frozen=True, slots=True)
class FaceEmbedding:
    box: Box  # left, top, right, bottom in pixels
    score: float  # detector confidence
    embedding: FloatArray


@lru_cache(maxsize=4)
def _models(config: FaceConfig) -> FaceModels:
    return FaceModels(config).load()


def load_gallery(path: str | Path, **settings: Any) -> Gallery:
    """A gallery file: facereel `.npz`, an `encoding` pickle or a `data.pt` list."""
    return open_gallery(Settings(**settings), Path(path))


def recognize_video(
    path: str | Path, gallery: Gallery | str | Path, **settings: Any
) -> VideoResult:
    """Who is in the video (or image) at `path`; `settings` are Settings fields."""
    config = Settings(**settings)
    if not isinstance(gallery, Gallery):
        gallery = open_gallery(config, Path(gallery))
    recognition = config.recognition
    recognizer = Recognizer(_models(recognition.face_config()), gallery,
                            recognition.recognize_options())
    return recognizer.recognize(Path(path))


def embed_faces(image: ImageArray | str | Path, **settings: Any) -> list[FaceEmbedding]:
    """Every face in an RGB image (array or file) with its box and embedding."""
    config = Settings(**settings)
    models = _models(config.recognition.face_config())
    picture = (ImagePicture(np.asarray(image, dtype=np.uint8)) if isinstance(image, np.ndarray)
               else load_image(Path(image), Path(image).name))
    faces = models.detect(picture)
    vectors = models.embed(picture.rgb(), [f.box for f in faces])
    assert vectors.shape[1] == embedder_dim(config.recognition.embedder)
    return [FaceEmbedding(f.box, f.score, v) for f, v in zip(faces, vectors, strict=True)]
