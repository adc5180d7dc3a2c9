"""What the face memory keeps of one video's recognition: a row per decided face track (known
or not) with the embedding and crop of every shot, its spans, its best crop and the decision
made about it. Built from the very tracks and decisions the result document was made of, so
the memory always agrees with the published result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from facereel.core.faces import FaceModels
from facereel.core.people import DecidedTrack, merge_spans, to_ms
from facereel.core.tracking import Track
from facereel.ports.memory import Shot, TrackDetail, TrackMemory, VideoMemory

Crops = Mapping[int, Sequence[tuple[float, str]]]  # track id -> (shot time, crop key)


@dataclass(frozen=True, slots=True)
class ModelNames:
    """Which models made a video's faces (recorded in its memory)."""

    detector: str
    aligner: str
    embedder: str

    @classmethod
    def of(cls, models: FaceModels) -> ModelNames:
        return cls(models.detector.name, models.aligner.name, models.embedder_id)


def video_memory(video: str, etag: str, decided: Sequence[DecidedTrack], crops: Crops,
                 gap_s: float, models: ModelNames, written: float = 0.0) -> VideoMemory:
    """The record of one video's content: a row per decided track, in result order. The
    time it is `written` is set by whoever stores it (messages stay deterministic)."""
    tracks = [track_memory(d, crops.get(d.track.id, ()), gap_s) for d in decided]
    return VideoMemory(video, etag, models.detector, models.aligner, models.embedder,
                       tracks, written=written)


def track_memory(decided: DecidedTrack, crops: Sequence[tuple[float, str]],
                 gap_s: float) -> TrackMemory:
    track, decision = decided.track, decided.decision
    by_time = dict(crops)
    times = _shot_times(track)
    shots = [Shot(to_ms(at), by_time.get(at, "")) for at in times]
    best = _best_shot(track, times)
    distance = decision.distance if decision.nearest is not None else None
    return TrackMemory(
        track_id=decided.track_id,
        appearances=[(a.start_ms, a.end_ms) for a in merge_spans(track.all_spans(), gap_s)],
        face=shots[best].crop if shots else "",
        shots=shots,
        embeddings=np.asarray(track.embeddings, dtype=np.float32),
        person=decision.person, nearest=decision.nearest,
        distance=None if distance is None else float(distance), detail=track_detail(track))


def track_detail(track: Track) -> TrackDetail:
    """What its result entry is made of besides embeddings (see `TrackDetail`)."""
    best = max(track.observations, key=lambda o: o.score)
    return TrackDetail(seen=sorted({to_ms(o.time_s) for o in track.observations}),
                       spans=[(to_ms(a), to_ms(b)) for a, b in track.all_spans()],
                       box=best.box, score=float(best.score))


def _shot_times(track: Track) -> list[float]:
    """The time of each embedding's shot (analysis records one per shot, in order)."""
    if len(track.shot_times) == len(track.embeddings):
        return list(track.shot_times)
    return [track.first_s] * len(track.embeddings)  # no shot times kept: crops unknown


def _best_shot(track: Track, times: list[float]) -> int:
    """The shot taken where the detector was surest (the first of equals): the crop a
    person looking through the memory sees first."""
    scores = {o.time_s: o.score for o in track.observations}
    return max(range(len(times)), key=lambda n: (scores.get(times[n], 0.0), -n), default=0)
