"""dlib's ResNet-34 face embedder run by onnxruntime (the default runtime).

The network is rebuilt from the installed dlib weights file on first use (~65 ms, nothing is
downloaded) and gives dlib's own vectors to ~1e-6, about 12x faster on one CPU thread. The
converted model is cached on disk: converting in every worker would leave each one holding
~130 MB of freed-but-retained conversion memory.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from facereel.core.faces.base import BackendOptions, register_embedder
from facereel.core.faces.embed_dlib import RESNET_DIM, RESNET_MODEL, RESNET_WEIGHTS
from facereel.core.faces.model_files import model_file
from facereel.core.faces.resnet_onnx import convert_resnet
from facereel.core.types import FloatArray, ImageArray
from facereel.errors import ModelNotAvailableError

log = logging.getLogger(__name__)
CONVERTER_VERSION = "1"


def cached_model(weights: Path, cache_dir: Path | None) -> Path | bytes:
    """The converted model: a file in `cache_dir` (converted and written there on first use),
    or bytes when there is no cache folder. A cached file is only read, so a read-only cache
    built ahead of time (`facereel models prepare`, as in the Lambda image) works; a cache
    that lacks the model and cannot take it is a clear error, not a silent conversion in
    every process."""
    if cache_dir is None:
        return convert_resnet(weights)
    stat = weights.stat()
    key = f"{weights.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{CONVERTER_VERSION}"
    target = cache_dir / f"dlib-resnet-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
    if target.is_file():
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=cache_dir, suffix=".part")
    except OSError as exc:
        raise _unwritable(target, exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(convert_resnet(weights))
        # mkstemp makes it private; readable by all, since an image built as root is run by
        # another user (Lambda's)
        Path(temporary).chmod(0o644)
        Path(temporary).replace(target)  # atomic: concurrent workers never see half a file
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _unwritable(target, exc) from exc
        raise
    log.info("converted model cached at %s", target)
    return target


def _unwritable(target: Path, exc: OSError) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"the converted model {target.name} is not in the cache {target.parent}, which cannot "
        f"take it ({exc.strerror or exc}): build it there beforehand with `facereel models "
        f"prepare --cache-dir {target.parent}`, or point FACEREEL_CACHE_DIR at a writable "
        "folder")


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
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
            raise ModelNotAvailableError(
                "onnxruntime is not installed: pip install onnxruntime, or use runtime 'dlib'"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        model = cached_model(model_file(RESNET_WEIGHTS, self._models_dir), self._cache_dir)
        self._session = ort.InferenceSession(
            str(model) if isinstance(model, Path) else model,
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )

    def embed(self, chips: Sequence[ImageArray]) -> FloatArray:
        self.load()
        if not chips:
            return np.zeros((0, RESNET_DIM), dtype=np.float32)
        batch = np.ascontiguousarray(np.stack(chips), dtype=np.uint8)
        (vectors,) = self._session.run(["embeddings"], {"chips": batch})
        return np.asarray(vectors, dtype=np.float32)
