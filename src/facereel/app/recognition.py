"""Build the core's objects from Settings: gallery, metadata lookup, recognizer."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from facereel.config import Settings
from facereel.core.faces import FaceModels
from facereel.core.gallery import Gallery
from facereel.core.gallery_io import read_gallery_file
from facereel.core.recognize import Recognizer
from facereel.errors import GalleryError
from facereel.ports.metadata import MetadataStore

log = logging.getLogger(__name__)
EMBEDDER_DIMS = {"dlib-resnet": 128}


def embedder_dim(settings: Settings) -> int:
    if settings.embedder not in EMBEDDER_DIMS:
        raise GalleryError(f"unknown embedder '{settings.embedder}'")
    return EMBEDDER_DIMS[settings.embedder]


def open_gallery(settings: Settings, path: Path | None = None, *, create: bool = False) -> Gallery:
    """The gallery at `path` (default: the configured one).

    A facereel `.npz` is loaded; an `encoding` pickle or `data.pt` is imported on the fly
    (read-only). A missing `.npz` is an empty gallery when `create` is set, else an error.
    """
    path = Path(path or settings.gallery_path)
    dim = embedder_dim(settings)
    if not path.exists():
        if create:
            return Gallery(settings.embedder, dim)
        raise GalleryError(
            f"gallery {path} does not exist: enrol people (facereel enroll NAME IMAGE...) or "
            "import a gallery (facereel gallery import FILE)",
            "gallery_not_found",
        )
    return read_gallery_file(path, settings.embedder, dim)


class MetadataLookup:
    """Person name -> metadata fields (without the name), read fresh from the store."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def __call__(self, name: str) -> dict[str, Any] | None:
        record = self.store.get_person(name)
        if record is None:
            return None
        return {k: v for k, v in record.items() if k != "name"}


def metadata_lookup(settings: Settings) -> MetadataLookup | None:
    """A lookup into the configured metadata store (None when no local store was made yet)."""
    if settings.metadata_backend == "sqlite" and not settings.metadata_path.exists():
        return None
    from facereel.pipeline.wiring import metadata_store

    return MetadataLookup(metadata_store(settings))


def build_recognizer(settings: Settings, gallery: Gallery | None = None) -> Recognizer:
    models = FaceModels(settings.face_config()).load()
    gallery = gallery if gallery is not None else open_gallery(settings)
    if not gallery.people:
        log.warning("the gallery is empty: every face will be reported as unknown")
    return Recognizer(models, gallery, settings.recognize_options(), metadata_lookup(settings))
