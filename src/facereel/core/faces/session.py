"""Every onnxruntime session facereel runs is built here, for every model.

One place decides threads, providers and the optimisation level, so the detector and the
embedder cannot drift apart (a session left on onnxruntime's default thread count would take
every core of a worker that is meant to use one). Models arrive as bytes or as a file; a model
made or extracted at run time is cached on disk once (`cache_model`), because building it in
every worker would cost each one time and memory it never gives back.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facereel.errors import ModelNotAvailableError

log = logging.getLogger(__name__)

PROVIDERS = ("CPUExecutionProvider",)  # no GPU here; one list so every model agrees

Model = Path | bytes


def build_session(model: Model, threads: int = 1) -> Any:
    """An onnxruntime InferenceSession for `model` using `threads` intra-op threads."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
        raise ModelNotAvailableError(
            "onnxruntime is not installed: pip install onnxruntime"
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1  # the graphs here are sequential: more only adds spinning
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, sess_options=options, providers=list(PROVIDERS))


def cache_model(name: str, cache_dir: Path | None, make: Callable[[], bytes]) -> Model:
    """`cache_dir/name`, written from `make()` when missing; the bytes when it cannot be.

    A cached file is only read, so a read-only cache built ahead of time (`facereel models
    prepare`, as in the Lambda image) works. The write is atomic (a temporary file renamed into
    place), so workers starting together never read half a file, and readable by everyone
    (an image built as root is run by another user, Lambda's). `name` must change whenever
    the content would. A cache that cannot take the model costs a conversion in every process
    (and its memory), so it is said in the log with the command that fills it.
    """
    if cache_dir is None:
        return make()
    target = cache_dir / name
    if target.is_file():
        return target
    model = make()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=cache_dir, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(model)
            Path(temporary).chmod(0o644)  # mkstemp makes it private
            Path(temporary).replace(target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("cannot cache the converted model %s in %s (%s): converting it in every "
                    "process; build it there beforehand with `facereel models prepare "
                    "--cache-dir %s`, or point FACEREEL_CACHE_DIR at a writable folder",
                    name, cache_dir, exc.strerror or exc, cache_dir)
        return model
    log.info("converted model cached at %s", target)
    return target
