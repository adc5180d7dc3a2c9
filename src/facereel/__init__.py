"""facereel: who is in this video?

A small functional API over pluggable backends::

    import facereel
    gallery = facereel.load_gallery("facereel-data/gallery.npz")
    result = facereel.recognize_video("clip.mp4", gallery)
    print(result.people[0].person, result.people[0].first_ms)
"""

from __future__ import annotations

from facereel.api import embed_faces, load_gallery, recognize_video
from facereel.core.gallery import Gallery
from facereel.core.results import PersonResult, VideoResult
from facereel.errors import FacereelError

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
