"""dlib's ResNet-34 face embedder run by onnxruntime (the default runtime).

The network is rebuilt from the installed dlib weights file on first use (~65 ms, nothing is
downloaded) and gives dlib's own vectors to ~1e-6, about 12x faster on one CPU thread. The
converted model is cached on disk: converting in every worker would leave each one holding
~130 MB of freed-but-retained conversion memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from facereel.core.faces.base import BackendOptions, register_embedder
from facereel.core.faces.embed_dlib import RESNET_DIM, RESNET_MODEL, RESNET_WEIGHTS
from facereel.core.faces.model_files import model_file
from facereel.core.faces.session import build_session, cache_model
from facereel.core.types import FloatArray, ImageArray

CONVERTER_VERSION = "1"


def cached_model(weights: Path, cache_dir: Path | None) -> Path | bytes:
    """The converted model: a cached file when a cache folder is usable, else bytes."""
    stat = weights.stat()
    key = f"{weights.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{CONVERTER_VERSION}"
    name = f"dlib-resnet-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
    return cache_model(name, cache_dir, lambda: _convert(weights))


def _convert(weights: Path) -> bytes:
    # imported here: the converter needs the `onnx` package (~35 ms to import), which a
    # process whose model is already cached (every batch worker, every parent) never does
    from facereel.core.faces.resnet_onnx import convert_resnet

    return convert_resnet(weights)


@register_embedder(RESNET_MODEL, "onnx")
class OnnxResnetEmbedder:
    model: ClassVar[str] = RESNET_MODEL
    runtime: ClassVar[str] = "onnx"
    dim: ClassVar[int] = RESNET_DIM
    aligner: ClassVar[str] = "dlib-5point"

    def __init__(self, options: BackendOptions) -> None:
        self._models_dir = options.models_dir
        self._cache_dir = options.cache_dir
        self._threads = max(1, options.threads)
        self._session: Any = None

    def load(self) -> None:
        if self._session is not None:
            return
        model = cached_model(model_file(RESNET_WEIGHTS, self._models_dir), self._cache_dir)
        self._session = build_session(model, self._threads)

    def embed(self, chips: Sequence[ImageArray]) -> FloatArray:
        self.load()
        if not chips:
            return np.zeros((0, RESNET_DIM), dtype=np.float32)
        batch = np.ascontiguousarray(np.stack(chips), dtype=np.uint8)
        (vectors,) = self._session.run(["embeddings"], {"chips": batch})
        return np.asarray(vectors, dtype=np.float32)
