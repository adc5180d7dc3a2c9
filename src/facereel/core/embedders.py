"""What each embedder model's vectors look like, known without loading any model (galleries
and stores check dimensions before a single weight is read)."""

from __future__ import annotations

from facereel.errors import GalleryError

EMBEDDER_DIMS = {"dlib-resnet": 128}


def embedder_dim(embedder: str) -> int:
    if embedder not in EMBEDDER_DIMS:
        raise GalleryError(f"unknown embedder '{embedder}'; known: "
                           f"{', '.join(sorted(EMBEDDER_DIMS))}", "config_error")
    return EMBEDDER_DIMS[embedder]
