"""Forgetting: a video's faces, or a person.

- A video: its memory record (every track of it) and the stage-1 objects of that content
  (its parts, which hold every shot's crop, and any result or memory document kept beside
  them). The input video and the published result are the user's, and stay.
- A person: every remembered track recorded as them, and every track that matches them now
  (as `search --person` finds them: videos processed before they were enrolled included),
  then their gallery faces and metadata record, so they are neither found nor recognized
  again. Their crops stay inside the parts of videos that are otherwise kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from facereel.errors import FacereelError
from facereel.memory.search import Searcher
from facereel.pipeline.parts import work_prefix
from facereel.ports.gallery import GalleryStore
from facereel.ports.memory import MemoryStore
from facereel.ports.metadata import MetadataStore
from facereel.ports.objectstore import ObjectStore

ATTEMPTS = 5  # a record rewritten meanwhile (a host remembering it again) is read again


@dataclass(slots=True)
class Forgotten:
    """What forgetting removed."""

    videos: int = 0  # videos whose record was removed (video) or rewritten (person)
    tracks: int = 0
    faces: int = 0  # shot embeddings
    objects: int = 0  # stage-1 objects deleted (parts holding crops, documents)
    gallery_faces: int = 0
    metadata: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def unknown(what: str) -> FacereelError:
    return FacereelError(what, "not_found")


def forget_video(memory: MemoryStore, objects: ObjectStore, video: str) -> Forgotten:
    record = memory.get(video)
    if record is None:
        raise unknown(f"the face memory holds nothing of {video!r}")
    memory.forget(video)
    done = Forgotten(videos=1, tracks=len(record.tracks), faces=record.faces)
    for info in list(objects.list(work_prefix(video, record.etag) + "/")):
        objects.delete(info.key)
        done.objects += 1
    return done


def forget_person(memory: MemoryStore, gallery: GalleryStore, metadata: MetadataStore,
                  searcher: Searcher, name: str, threshold: float) -> Forgotten:
    current = gallery.load().gallery
    vectors = current.vectors_of(name)
    recorded = memory.tracks_of(name)
    if not len(vectors) and not recorded and metadata.get_person(name) is None:
        raise unknown(f"nobody called {name!r} is enrolled or remembered")
    drop: dict[str, set[str]] = {}
    for video, track in recorded:
        drop.setdefault(video, set()).add(track)
    if len(vectors):
        for match in searcher.search(np.asarray(vectors), threshold):
            drop.setdefault(match.video, set()).add(match.track_id)
    done = Forgotten()
    for video, tracks in sorted(drop.items()):
        _drop_tracks(memory, video, tracks, done)
    done.gallery_faces, _ = gallery.update(lambda g: g.remove(name))
    done.metadata = metadata.delete_person(name)
    return done


def _drop_tracks(memory: MemoryStore, video: str, tracks: set[str], done: Forgotten) -> None:
    for _ in range(ATTEMPTS):
        record = memory.get(video)
        if record is None:
            return
        gone = [t for t in record.tracks if t.track_id in tracks]
        if not gone:
            return
        record.tracks = [t for t in record.tracks if t.track_id not in tracks]
        if memory.replace(record):
            done.videos += 1
            done.tracks += len(gone)
            done.faces += sum(len(t.shots) for t in gone)
            return
    raise FacereelError(f"{video}: its record kept changing while a person was forgotten",
                        "memory_conflict")
