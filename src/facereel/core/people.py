"""Turn followed faces into the people of a video: who, when, how sure, how many strangers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facereel.core.gallery import Gallery
from facereel.core.match import Decision, MatchPolicy, decide, similarity
from facereel.core.results import Appearance, PersonResult, StrangerResult
from facereel.core.tracking import Observation, Track
from facereel.core.types import FloatArray

MetadataLookup = Callable[[str], dict[str, Any] | None]
FaceLocator = Callable[[list[Track]], str]  # a person's tracks -> where to fetch a face crop
STRANGER_SAME_PERSON = 0.55  # two unknown faces closer than this count as one stranger


@dataclass(frozen=True, slots=True)
class DecidedTrack:
    """One face track (or part of a track split between two people) and who it was decided
    to be: what the face memory keeps of every track, known or not."""

    track_id: str  # stable within the video, as results name it
    track: Track
    decision: Decision


@dataclass(frozen=True, slots=True)
class Summary:
    people: list[PersonResult]
    unknown_faces: int  # distinct strangers
    faces: bool  # whether any confident face was seen at all
    strangers: list[StrangerResult] = field(default_factory=list)  # one per unknown track
    decided: list[DecidedTrack] = field(default_factory=list)  # every face track, in order


def to_ms(seconds: float) -> int:
    return round(seconds * 1000)


def merge_spans(spans: list[tuple[float, float]], gap_s: float) -> list[Appearance]:
    """Merge time spans whose gap is at most `gap_s` into separate appearances."""
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start - merged[-1][1] <= gap_s:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [Appearance(to_ms(s), to_ms(e)) for s, e in merged]


def summarize(tracks: list[Track], gallery: Gallery, policy: MatchPolicy, gap_s: float,
              metadata: MetadataLookup | None = None, face_of: FaceLocator | None = None,
              presence_score: float = 0.0) -> Summary:
    """People and strangers among `tracks`; a track counts as a face only if one of its
    detections reached `presence_score` (0..1, the detector's own threshold)."""
    decided = decide_tracks(tracks, gallery, policy, presence_score)
    return summarize_decided(decided, gallery, gap_s, metadata, face_of)


def decide_tracks(tracks: list[Track], gallery: Gallery, policy: MatchPolicy,
                  presence_score: float = 0.0) -> list[DecidedTrack]:
    """Every face track (split where it changed person) with who it is, in order."""
    decided: list[DecidedTrack] = []
    for track_id, track in _parts(tracks, policy.threshold):
        # weak detections help follow a face through hard frames, but a track that never
        # scored as a confident face is more likely a texture than a person
        if not track.embeddings or max(o.score for o in track.observations) < presence_score:
            continue
        decided.append(DecidedTrack(track_id, track, decide(gallery, track.embeddings, policy)))
    return decided


def summarize_decided(decided: list[DecidedTrack], gallery: Gallery, gap_s: float,
                      metadata: MetadataLookup | None = None,
                      face_of: FaceLocator | None = None) -> Summary:
    """People and strangers of tracks already decided: what a result document lists (also
    how the face memory rebuilds a result when the gallery changed, `memory.relearn`)."""
    by_person: dict[str, list[Track]] = {}
    strangers: list[DecidedTrack] = []
    for item in decided:
        if item.decision.person is None:
            strangers.append(item)
        else:
            by_person.setdefault(item.decision.person, []).append(item.track)
    people = [_person(name, group, gallery, gap_s, metadata) for name, group in by_person.items()]
    if face_of is not None:
        for person in people:
            person.face = face_of(by_person[person.person])
    people.sort(key=lambda p: (-p.frames, -p.similarity, p.person))
    unknown = [_stranger(s.track_id, s.track, s.decision, gap_s, face_of) for s in strangers]
    unknown.sort(key=lambda s: (s.first_ms, s.track_id))
    return Summary(people, count_strangers([s.track for s in strangers]),
                   faces=bool(people or strangers), strangers=unknown, decided=list(decided))


def _parts(tracks: list[Track], threshold: float) -> list[tuple[str, Track]]:
    """Each track (or each part of a track split between two people) with its stable id: the
    track's own id, and `<id>.<n>` for the parts after the first."""
    found = []
    for track in tracks:
        for number, part in enumerate(split_disagreeing(track, threshold)):
            found.append((str(track.id) if number == 0 else f"{track.id}.{number}", part))
    return found


def _stranger(track_id: str, track: Track, decision: Decision, gap_s: float,
              face_of: FaceLocator | None) -> StrangerResult:
    best = max(track.observations, key=lambda o: o.score)
    appearances = merge_spans(track.all_spans(), gap_s)
    distance = decision.distance if decision.nearest is not None else None
    return StrangerResult(
        track_id=track_id, first_ms=appearances[0].start_ms,
        last_ms=max(a.end_ms for a in appearances),
        frames=len({o.time_s for o in track.observations}), box=best.box,
        appearances=appearances, face=face_of([track]) if face_of is not None else "",
        nearest=decision.nearest,
        distance=round(distance, 3) if distance is not None else None)


def split_disagreeing(track: Track, threshold: float) -> list[Track]:
    """The parts of a track between consecutive shots whose embeddings are farther apart than
    the same-person `threshold`: two people followed as one (a change analysis missed).

    Analysis should have ended the track there (a cut, a look jump); this is the safety net, so
    neither person is credited with the other's time. Each part keeps its own shots,
    observations and spans; they part half-way between the two shots (the change happened
    somewhere between them). A part keeps the track's id, which names its shots.
    """
    vectors, times = track.embeddings, track.shot_times
    if len(vectors) < 2 or len(vectors) != len(times):
        return [track]
    breaks = [i for i in range(1, len(vectors))
              if float(np.linalg.norm(vectors[i] - vectors[i - 1])) > threshold]
    if not breaks:
        return [track]
    edges = [float("-inf"), *((times[i - 1] + times[i]) / 2 for i in breaks), float("inf")]
    shots = [0, *breaks, len(vectors)]
    parts = [_part(track, edges[k], edges[k + 1], shots[k], shots[k + 1])
             for k in range(len(shots) - 1)]
    # shots are taken at observations; a part without any would be a malformed track
    return parts if all(p.observations for p in parts) else [track]


def _part(track: Track, start: float, end: float, first_shot: int, end_shot: int) -> Track:
    """What `track` holds between the times `start` and `end`."""
    observations = [o for o in track.observations if start <= o.time_s < end]
    spans = [(max(a, start), min(b, end)) for a, b in track.all_spans()
             if max(a, start) <= min(b, end)]
    if not spans and observations:  # parted inside a gap: the part is when it was seen
        spans = [(observations[0].time_s, observations[-1].time_s)]
    spans = spans or [(start, start)]
    return Track(id=track.id, observations=observations,
                 shot_times=track.shot_times[first_shot:end_shot],
                 embeddings=track.embeddings[first_shot:end_shot],
                 first_s=spans[-1][0], last_s=spans[-1][1], spans=spans[:-1],
                 closed=track.closed)


def _person(name: str, tracks: list[Track], gallery: Gallery, gap_s: float,
            metadata: MetadataLookup | None) -> PersonResult:
    embeddings = [e for t in tracks for e in t.embeddings]
    distance = float(np.median(gallery.distances_to(name, np.asarray(embeddings))))
    observations: list[Observation] = [o for t in tracks for o in t.observations]
    best = max(observations, key=lambda o: o.score)
    spans = [span for t in tracks for span in t.all_spans()]
    appearances = merge_spans(spans, gap_s)
    return PersonResult(
        person=name,
        similarity=round(similarity(distance), 3),
        distance=round(distance, 3),
        first_ms=appearances[0].start_ms,
        last_ms=max(a.end_ms for a in appearances),
        frames=len({o.time_s for o in observations}),
        box=best.box,
        appearances=appearances,
        metadata=dict((metadata(name) if metadata else None) or {}),
    )


def count_strangers(tracks: list[Track]) -> int:
    """Distinct unknown people: tracks whose mean embeddings are close count once."""
    centres: list[FloatArray] = []
    for track in tracks:
        mean = np.mean(np.asarray(track.embeddings, dtype=np.float32), axis=0)
        if not any(float(np.linalg.norm(mean - c)) < STRANGER_SAME_PERSON for c in centres):
            centres.append(mean)
    return len(centres)

