"""FileGalleryStore: the gallery as one file on this machine.

A facereel `.npz` is read and written; an `encoding` pickle or a `data.pt` list is imported on
the fly, read-only. The version is the file's identity (inode, size, modification time): a
new version is written to a temporary file and renamed into place, so it always gets a new
inode. Updates hold an exclusive lock on a file beside the gallery for the whole
read-modify-write, so concurrent enrolments in several processes are serialised.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from facereel.core.gallery import Gallery
from facereel.core.gallery_io import read_gallery_file
from facereel.errors import GalleryError
from facereel.ports.gallery import GallerySnapshot

T = TypeVar("T")


class FileGalleryStore:
    def __init__(self, path: Path, embedder: str, dim: int) -> None:
        self.path = Path(path)
        self.embedder = embedder
        self.dim = dim

    def describe(self) -> str:
        return f"gallery file {self.path}"

    def version(self) -> str:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise GalleryError(f"cannot read gallery {self.path}: {exc.strerror}") from exc
        return f"{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}"

    def load(self) -> GallerySnapshot:
        version = self.version()  # before reading: a change in between is seen next time
        if not version:
            return GallerySnapshot(Gallery(self.embedder, self.dim), "")
        return GallerySnapshot(read_gallery_file(self.path, self.embedder, self.dim), version)

    def update(self, change: Callable[[Gallery], T]) -> tuple[T, GallerySnapshot]:
        if self.path.exists() and self.path.suffix.lower() != ".npz":
            raise GalleryError(f"the gallery {self.path.name} is an imported file and is "
                               "read-only: import it into a .npz gallery to change it",
                               "read_only_gallery")
        with self._locked():
            gallery = self.load().gallery
            result = change(gallery)
            gallery.save(self.path)
            return result, GallerySnapshot(gallery, self.version())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.path.parent / f".{self.path.name}.lock"
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            handle = lock.open("a")
        except OSError as exc:
            raise GalleryError(f"cannot lock gallery {self.path}: {exc.strerror}") from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
