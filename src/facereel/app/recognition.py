"""Build the core's objects from Settings for the one-shot paths (CLI, Python API, batch):
the gallery, the metadata lookup, the recognizer."""

from __future__ import annotations

import logging
from pathlib import Path

from facereel.config import Settings
from facereel.core.embedders import embedder_dim
from facereel.core.faces import FaceModels
from facereel.core.gallery import Gallery
from facereel.core.gallery_io import read_gallery_file
from facereel.core.recognize import Recognizer
from facereel.errors import GalleryError
from facereel.pipeline.wiring import gallery_store, metadata_store
from facereel.ports.gallery import GalleryStore
from facereel.ports.gallery.file import FileGalleryStore
from facereel.ports.metadata import MetadataLookup

log = logging.getLogger(__name__)


def gallery_of(settings: Settings, path: Path | None = None) -> GalleryStore:
    """The gallery at `path` (a file), else the configured one (a file or a bucket)."""
    embedder = settings.recognition.embedder
    if path is not None:
        return FileGalleryStore(Path(path), embedder, embedder_dim(embedder))
    return gallery_store(settings.storage, embedder)


def open_gallery(settings: Settings, path: Path | None = None, *, create: bool = False) -> Gallery:
    """The gallery at `path` (default: the configured one).

    A facereel `.npz` is loaded; an `encoding` pickle or `data.pt` is imported on the fly
    (read-only). A missing gallery is an empty one when `create` is set, else an error.
    """
    embedder = settings.recognition.embedder
    if path is not None and Path(path).exists():
        return read_gallery_file(Path(path), embedder, embedder_dim(embedder))
    store = gallery_of(settings, path)
    snapshot = store.load()
    if not snapshot.version and not create:
        raise GalleryError(
            f"{store.describe()} does not exist: enrol people (facereel enroll NAME IMAGE...) "
            "or import a gallery (facereel gallery import FILE)", "gallery_not_found")
    return snapshot.gallery


def metadata_lookup(settings: Settings) -> MetadataLookup | None:
    """A lookup into the configured metadata store (None when no local store was made yet)."""
    storage = settings.storage
    if storage.metadata_backend == "sqlite" and not storage.metadata_path.exists():
        return None
    return MetadataLookup(metadata_store(storage))


def build_recognizer(settings: Settings, gallery: Gallery | None = None) -> Recognizer:
    models = FaceModels(settings.recognition.face_config()).load()
    gallery = gallery if gallery is not None else open_gallery(settings)
    if not gallery.people:
        log.warning("the gallery is empty: every face will be reported as unknown")
    return Recognizer(models, gallery, settings.recognition.recognize_options(),
                      metadata_lookup(settings))
