"""facereel: who is in this video?

A small functional API over pluggable backends::

    import facereel
    gallery = facereel.load_gallery("facereel-data/gallery.npz")
    result = facereel.recognize_video("clip.mp4", gallery)
    print(result.people[0].person, result.people[0].first_ms)

The names below are loaded on first use, so `import facereel` (and every CLI command that needs
no model, like `facereel status`) starts without loading numpy, PyAV, dlib or onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facereel.api import embed_faces, load_gallery, recognize_video
    from facereel.core.gallery import Gallery
    from facereel.core.results import PersonResult, VideoResult
    from facereel.errors import FacereelError

_EXPORTS = {
    "FacereelError": "facereel.errors",
    "Gallery": "facereel.core.gallery",
    "PersonResult": "facereel.core.results",
    "VideoResult": "facereel.core.results",
    "embed_faces": "facereel.api",
    "load_gallery": "facereel.api",
    "recognize_video": "facereel.api",
}

__all__ = [
    "FacereelError",
    "Gallery",
    "PersonResult",
    "VideoResult",
    "embed_faces",
    "load_gallery",
    "recognize_video",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'facereel' has no attribute {name!r}")
