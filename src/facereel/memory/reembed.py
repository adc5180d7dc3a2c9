"""Re-embedding: faces remembered by an older embedder get vectors from the configured one,
computed from their stored crops (the shots inside each video's parts), never by decoding a
video again; each track is then matched again against the current gallery. A video whose
crops are gone (its parts deleted) is counted and left as it is."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from facereel.core.faces import FaceModels
from facereel.core.gallery import Gallery
from facereel.core.match import MatchPolicy, decide
from facereel.core.shots import FaceShot
from facereel.errors import FacereelError
from facereel.memory.capture import ModelNames
from facereel.pipeline.parts import load_part, split_face_key
from facereel.ports.memory import MemoryStore, TrackMemory, VideoMemory
from facereel.ports.objectstore import ObjectNotFoundError, ObjectStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Reembedded:
    videos: int = 0  # records re-embedded
    faces: int = 0  # shots embedded
    current: int = 0  # records already made by the configured embedder
    missing: int = 0  # records whose crops are gone (left as they are)
    changed: int = 0  # records rewritten by someone else meanwhile (left for the next run)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def reembed(memory: MemoryStore, objects: ObjectStore, models: FaceModels, gallery: Gallery,
            policy: MatchPolicy) -> Reembedded:
    names = ModelNames.of(models)
    done = Reembedded()
    for summary in list(memory.videos()):
        if summary.embedder == names.embedder:
            done.current += 1
            continue
        record = memory.get(summary.video)
        if record is None or record.embedder == names.embedder:
            continue
        try:
            shots = _crops(objects, record)
        except (ObjectNotFoundError, FacereelError) as exc:
            log.warning("cannot re-embed %s: %s", record.video, exc)
            done.missing += 1
            continue
        record.tracks = [_again(track, shots, models, gallery, policy)
                         for track in record.tracks]
        record.aligner, record.embedder = names.aligner, names.embedder
        if memory.replace(record):
            done.videos += 1
            done.faces += record.faces
        else:
            done.changed += 1
    return done


def _again(track: TrackMemory, shots: dict[str, FaceShot], models: FaceModels,
           gallery: Gallery, policy: MatchPolicy) -> TrackMemory:
    vectors = models.embed_shots([shots[shot.crop] for shot in track.shots])
    decision = decide(gallery, list(vectors), policy)
    track.embeddings = vectors
    track.person, track.nearest = decision.person, decision.nearest
    track.distance = decision.distance if decision.nearest is not None else None
    return track


def _crops(objects: ObjectStore, record: VideoMemory) -> dict[str, FaceShot]:
    """Every shot of the record, by its crop key (each part read once)."""
    wanted = {shot.crop for track in record.tracks for shot in track.shots}
    parts: dict[str, set[str]] = {}
    for crop in wanted:
        where = split_face_key(crop)
        if where is None:
            raise FacereelError(f"no stored crop for a shot of {record.video}", "not_found")
        parts.setdefault(where[0], set()).add(crop)
    found: dict[str, FaceShot] = {}
    for part, crops in parts.items():
        found.update((key, shot) for key, shot in _shots(part, objects.get_bytes(part))
                     if key in crops)
    if wanted - set(found):
        raise FacereelError(f"some crops of {record.video} are not in its parts", "not_found")
    return found


def _shots(part: str, data: bytes) -> Iterator[tuple[str, FaceShot]]:
    """(crop key, shot) of every shot in a part object."""
    loaded = load_part(data)
    by_track: dict[int, list[FaceShot]] = {}
    for track, shot in loaded.shots:
        by_track.setdefault(track.id, []).append(shot)
    for track_id, members in loaded.faces.items():
        for (_, member), shot in zip(members, by_track.get(track_id, []), strict=True):
            yield f"{part}/{member}", shot
