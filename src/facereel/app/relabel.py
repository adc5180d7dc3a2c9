"""Renaming a person, and merging one person into another: their gallery faces and metadata
record move to the new name (one conditional gallery write), then the results of past videos
that change are republished from the face memory (`memory.relearn`). Shared by the CLI and
the HTTP API; callers write the audit lines."""

from __future__ import annotations

from dataclasses import dataclass

from facereel.core.gallery import Gallery
from facereel.errors import FacereelError
from facereel.memory.relearn import Relearned
from facereel.ports.gallery import GalleryStore
from facereel.ports.metadata import MetadataStore


@dataclass(frozen=True, slots=True)
class Relabelled:
    person: str  # the name they have now
    faces: int  # gallery faces moved
    metadata: bool  # whether a metadata record moved (or was merged)
    learned: Relearned

    def to_dict(self) -> dict[str, object]:
        return {"person": self.person, "faces": self.faces, "metadata": self.metadata,
                "republished": self.learned.republished}


def move_faces(gallery: Gallery, old: str, new: str, merge: bool) -> int:
    """Give `old`'s gallery faces to `new` (who must not be enrolled unless `merge`)."""
    if not merge and new in gallery.names:
        raise FacereelError(f"{new!r} is enrolled already: merge the two instead", "exists")
    moved = gallery.names.count(old)
    gallery.names = [new if name == old else name for name in gallery.names]
    return moved


def move_record(metadata: MetadataStore, old: str, new: str) -> bool:
    """Move `old`'s metadata record to `new` (whose own fields win when it has one)."""
    record = metadata.get_person(old)
    if record is None:
        return False
    fields = {k: v for k, v in record.items() if k != "name"}
    target = {k: v for k, v in (metadata.get_person(new) or {}).items() if k != "name"}
    metadata.put_people([{**fields, **target, "name": new}])
    metadata.delete_person(old)
    return True


def _check(gallery: Gallery, metadata: MetadataStore, old: str, new: str,
           merge: bool) -> None:
    def known(name: str) -> bool:
        return name in gallery.names or metadata.get_person(name) is not None

    if old == new:
        raise FacereelError(f"{old!r} and {new!r} are the same person", "invalid_request")
    if not known(old):
        raise FacereelError(f"nobody called {old!r} is enrolled (see facereel gallery list)",
                            "not_found")
    if merge and not known(new):
        raise FacereelError(f"nobody called {new!r} is enrolled (see facereel gallery list)",
                            "not_found")
    if not merge and known(new):
        raise FacereelError(f"{new!r} exists already: merge the two instead", "exists")


def relabel(store: GalleryStore, metadata: MetadataStore, old: str, new: str,
            merge: bool) -> tuple[int, bool, Gallery]:
    """Move `old`'s faces and record to `new`: (faces moved, record moved, the gallery)."""
    _check(store.load().gallery, metadata, old, new, merge)
    faces, snapshot = store.update(lambda gallery: move_faces(gallery, old, new, merge))
    return faces, move_record(metadata, old, new), snapshot.gallery
