"""GalleryStore: where the gallery of enrolled people lives, seen by every host.

A gallery has a *version* (an opaque string that changes whenever its content does). Hosts
read it once and then only ask for the version, at most every few seconds (`GalleryCache`:
the staleness bound is stated, and checking costs one stat or one HEAD, not a download per
delivery). Changing the gallery is a read-modify-write made atomic by a conditional write: two
enrolments that run at the same time both land (the one that loses the race re-reads and
applies its change again), never one over the other.

Backends: `file` (one `.npz` file on this machine, or a read-only `encoding` pickle /
`data.pt`) and `bucket` (a manifest object naming immutable segment objects in any
ObjectStore, so a host anywhere sees enrolments, and a large gallery can be split into
segments that are fetched once each).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from facereel.core.gallery import Gallery
from facereel.errors import GalleryError

T = TypeVar("T")
MAX_UPDATE_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class GallerySnapshot:
    gallery: Gallery
    version: str  # "" when there is no gallery yet (an empty one is answered)


class GalleryConflictError(GalleryError):
    """A change kept losing the race against other writers."""

    code = "gallery_conflict"


class GalleryStore(Protocol):
    embedder: str
    dim: int

    def version(self) -> str:
        """The current version ("" when there is no gallery yet): one cheap look."""
        ...

    def load(self) -> GallerySnapshot:
        """The gallery and the version it was read at (empty, version "", when none)."""
        ...

    def update(self, change: Callable[[Gallery], T]) -> tuple[T, GallerySnapshot]:
        """Apply `change` to the current gallery and store the result as a new version,
        atomically against concurrent updates (retried on a lost race, so `change` may run
        more than once: it must only modify the gallery it is given). A `change` that raises
        stores nothing. Answers what `change` returned and the stored snapshot."""
        ...

    def describe(self) -> str: ...


class GalleryCache:
    """A host's view of the gallery: reloaded when its version changes, looked at no more
    often than every `refresh_s` seconds (the staleness a host may show after an enrolment)."""

    def __init__(self, store: GalleryStore, refresh_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self.clock = clock
        self._snapshot: GallerySnapshot | None = None
        self._checked = float("-inf")

    def current(self) -> Gallery:
        now = self.clock()
        if self._snapshot is None:
            self._snapshot, self._checked = self.store.load(), now
        elif now - self._checked >= self.refresh_s:
            self._checked = now
            if self.store.version() != self._snapshot.version:
                self._snapshot = self.store.load()
        return self._snapshot.gallery

    def replace(self, snapshot: GallerySnapshot) -> None:
        """This host just wrote `snapshot`: use it without waiting for the next look."""
        self._snapshot, self._checked = snapshot, self.clock()
