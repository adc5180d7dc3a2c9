"""BucketGalleryStore: the gallery as objects in a bucket, seen by hosts anywhere.

    <prefix>/manifest.json       {"format", "embedder", "dim", "segments": [{"key", "count"}]}
    <prefix>/segments/<md5>.npz  immutable, named after their content

The version is the manifest's etag. A change writes its new segment first, then replaces the
manifest with a conditional write on the etag it read (`If-Match`, or `If-None-Match` for the
first one): of two concurrent enrolments one wins, the other re-reads and applies its change
again, so neither is lost. Segments are immutable, so a host fetches each one once; today a
change rewrites the gallery as one segment, and a gallery too large for one object can later
be split without changing readers.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from facereel.core.gallery import Gallery
from facereel.errors import GalleryError
from facereel.ports.gallery import MAX_UPDATE_ATTEMPTS, GalleryConflictError, GallerySnapshot
from facereel.ports.objectstore import (
    ObjectNotFoundError,
    ObjectStore,
    PreconditionFailedError,
    md5_hex,
)

T = TypeVar("T")
FORMAT = "facereel-gallery-manifest/1"
MAX_MANIFEST_BYTES = 1 << 20
LOAD_ATTEMPTS = 3  # a segment deleted under a reader: read the new manifest instead


class BucketGalleryStore:
    def __init__(self, store: ObjectStore, embedder: str, dim: int,
                 prefix: str = "gallery") -> None:
        self.store = store
        self.embedder = embedder
        self.dim = dim
        self.prefix = prefix.strip("/")
        self.manifest_key = f"{self.prefix}/manifest.json"
        self._segments: dict[str, Gallery] = {}  # immutable: fetched once per host

    def describe(self) -> str:
        return f"gallery in {self.store.describe()} under {self.prefix}/"

    def version(self) -> str:
        info = self.store.head(self.manifest_key)
        return info.etag if info is not None else ""

    def load(self) -> GallerySnapshot:
        for attempt in range(LOAD_ATTEMPTS):
            try:
                return self._load()
            except ObjectNotFoundError:
                if attempt == LOAD_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _load(self) -> GallerySnapshot:
        try:
            data, info = self.store.fetch(self.manifest_key)
        except ObjectNotFoundError:
            return GallerySnapshot(Gallery(self.embedder, self.dim), "")
        manifest = self._manifest(data)
        gallery = Gallery(self.embedder, self.dim)
        for segment in manifest["segments"]:
            part = self._segment(str(segment["key"]))
            gallery.names.extend(part.names)
            gallery.vectors = np.vstack([gallery.vectors, part.vectors])
        return GallerySnapshot(gallery, info.etag)

    def _manifest(self, data: bytes) -> dict[str, Any]:
        if len(data) > MAX_MANIFEST_BYTES:
            raise GalleryError(f"{self.describe()}: manifest larger than {MAX_MANIFEST_BYTES}")
        try:
            manifest = json.loads(data)
        except ValueError as exc:
            raise GalleryError(f"{self.describe()}: unreadable manifest ({exc})") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
                or not isinstance(manifest.get("segments"), list):
            raise GalleryError(f"{self.describe()}: not a facereel gallery manifest")
        if manifest.get("embedder") != self.embedder or manifest.get("dim") != self.dim:
            raise GalleryError(
                f"{self.describe()} holds '{manifest.get('embedder')}' vectors but the "
                f"configured embedder is '{self.embedder}'", "embedder_mismatch")
        return manifest

    def _segment(self, key: str) -> Gallery:
        if key not in self._segments:
            part = Gallery.from_bytes(self.store.get_bytes(key), key)
            if part.embedder != self.embedder or part.dim != self.dim:
                raise GalleryError(f"segment {key} was made by '{part.embedder}'",
                                   "embedder_mismatch")
            self._segments[key] = part
        return self._segments[key]

    def update(self, change: Callable[[Gallery], T]) -> tuple[T, GallerySnapshot]:
        for attempt in range(MAX_UPDATE_ATTEMPTS):
            current = self.load()
            result = change(current.gallery)
            stored = self._store(current, current.gallery)
            if stored is not None:
                return result, stored
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # another writer won
        raise GalleryConflictError(f"{self.describe()}: gave up after {MAX_UPDATE_ATTEMPTS} "
                                   "concurrent changes won the race")

    def _store(self, base: GallerySnapshot, gallery: Gallery) -> GallerySnapshot | None:
        """Write `gallery` as the version after `base`; None when another writer came first."""
        data = gallery.to_bytes()
        key = f"{self.prefix}/segments/{md5_hex(data)}.npz"
        self.store.put_bytes(key, data, content_type="application/octet-stream")
        self._segments[key] = gallery
        manifest = {"format": FORMAT, "embedder": self.embedder, "dim": self.dim,
                    "segments": [{"key": key, "count": len(gallery)}]}
        old = self._segment_keys(base)
        try:
            info = self.store.put_bytes(self.manifest_key, json.dumps(manifest).encode(),
                                        content_type="application/json", expect=base.version)
        except PreconditionFailedError:
            return None
        for stale in old - {key}:  # unreferenced now; a reader racing us re-reads the manifest
            self.store.delete(stale)
            self._segments.pop(stale, None)
        return GallerySnapshot(gallery, info.etag)

    def _segment_keys(self, snapshot: GallerySnapshot) -> set[str]:
        if not snapshot.version:
            return set()
        try:
            return {str(s["key"]) for s in self._manifest(
                self.store.get_bytes(self.manifest_key))["segments"]}
        except ObjectNotFoundError:
            return set()
