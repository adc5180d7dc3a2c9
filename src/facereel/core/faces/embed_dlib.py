"""dlib's ResNet-34 face embedder run by dlib itself (dlib-bin): the reference runtime."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from facereel.core.faces.base import BackendOptions, register_embedder
from facereel.core.faces.model_files import model_file
from facereel.core.types import FloatArray, ImageArray

RESNET_WEIGHTS = "dlib_face_recognition_resnet_model_v1.dat"
RESNET_MODEL = "dlib-resnet"
RESNET_DIM = 128


@register_embedder(RESNET_MODEL, "dlib")
class DlibResnetEmbedder:
    model: ClassVar[str] = RESNET_MODEL
    runtime: ClassVar[str] = "dlib"
    dim: ClassVar[int] = RESNET_DIM
    aligner: ClassVar[str] = "dlib-5point"

    def __init__(self, options: BackendOptions) -> None:
        self._models_dir = options.models_dir
        self._net: Any = None

    def load(self) -> None:
        if self._net is None:
            import dlib

            path = model_file(RESNET_WEIGHTS, self._models_dir)
            self._net = dlib.face_recognition_model_v1(str(path))

    def embed(self, chips: Sequence[ImageArray]) -> FloatArray:
        self.load()
        if not chips:
            return np.zeros((0, RESNET_DIM), dtype=np.float32)
        vectors = self._net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        return np.asarray([np.asarray(v) for v in vectors], dtype=np.float32)
