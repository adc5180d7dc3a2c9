"""Results that learn: when the gallery changes (a person enrolled, renamed or merged into
another, a group of strangers named), every remembered video is decided again from its
stored faces and the results that change are republished: `<key>.json`, `<stem>.txt`,
`<stem>.csv` and the video's metadata row, as the `publish` stage writes them. No video is
decoded.

A result is rebuilt by the very code recognition uses (`core.people.summarize_decided` over
`core.match.decide`): each remembered track becomes again the track it was (its shots'
embeddings and times, the times it was seen, its spans, its surest detection: the record's
`TrackDetail`), so a republished result lists people and strangers as a fresh `recognize`
with the new gallery would. What the memory does not hold (duration, frames sampled,
statistics, an error) is kept from the published document. Records remembered before
tracks kept their detail are rebuilt from what they have: the shots' times for the frames
seen, the merged spans, and the box the old document shows for that track.

When one person changed (enrolled, renamed, merged into, a group named after them), only the
videos with a remembered shot within `threshold + clear slack + clear margin` of that
person's gallery faces are decided again (`FaceMemory.relearn`, found through the index
snapshot as a search finds them): beyond that distance the person can be nobody's answer
nor the runner-up that denies a clear winner. (A stranger's `nearest` farther than that is
not refreshed.) Only videos whose current content has a published result (its metadata row
names it) are republished; a record whose decisions changed is also updated in the memory
(`replace`), so search and the grouping of strangers see who each track is now.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from facereel.core.gallery import Gallery
from facereel.core.match import MatchPolicy, decide
from facereel.core.people import DecidedTrack, FaceLocator, MetadataLookup, summarize_decided
from facereel.core.results import VideoResult
from facereel.core.tracking import Observation, Track
from facereel.errors import FacereelError
from facereel.pipeline.parts import FaceCrops
from facereel.pipeline.publishing import publish_result
from facereel.pipeline.wiring import Ports
from facereel.ports.memory import TrackDetail, TrackMemory, VideoMemory
from facereel.ports.objectstore import ObjectNotFoundError

log = logging.getLogger(__name__)
SAME_DISTANCE = 1e-6


@dataclass(slots=True)
class Relearned:
    videos: int = 0  # records decided again
    changed: int = 0  # records whose decisions changed (updated in the memory)
    republished: int = 0  # results that changed, written again
    unpublished: int = 0  # changed records without a current published result

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Rules:
    """How results are decided and written (the recognize stage's own settings)."""

    policy: MatchPolicy
    gap_s: float
    metadata: MetadataLookup | None = None


def memory_crops(pairs: list[tuple[Track, TrackMemory]]) -> FaceCrops:
    """The face crops a rebuilt result points to, chosen as the pipeline chooses them
    (`pipeline.parts.FaceCrops`), from the kept shots of each remembered track."""
    shots: dict[int, list[tuple[float, str]]] = {}
    for track, memory in pairs:
        shots.setdefault(track.id, []).extend(
            (s.at_ms / 1000, s.crop) for s in memory.shots if s.crop)
    return FaceCrops(shots)


def old_detail(memory: TrackMemory, old: VideoResult) -> TrackDetail:
    """A detail for a track remembered before details were kept, from what there is."""
    box = next((s.box for s in old.strangers if s.track_id == memory.track_id),
               next((p.box for p in old.people if p.person == memory.person), (0, 0, 0, 0)))
    return TrackDetail(seen=sorted({s.at_ms for s in memory.shots}),
                       spans=list(memory.appearances) or [(0, 0)], box=box, score=1.0)


def track_of(memory: TrackMemory, detail: TrackDetail) -> Track:
    """The analysed track a memory row was made of (as far as results need it)."""
    spans = [(a / 1000, b / 1000) for a, b in detail.spans]
    return Track(id=int(memory.track_id.split(".")[0]),
                 observations=[Observation(t / 1000, detail.box, detail.score)
                               for t in detail.seen],
                 shot_times=[s.at_ms / 1000 for s in memory.shots],
                 embeddings=list(memory.embeddings),
                 first_s=spans[-1][0], last_s=spans[-1][1], spans=spans[:-1], closed=True)


def redecided(record: VideoMemory, gallery: Gallery, policy: MatchPolicy,
              old: VideoResult | None = None) -> list[tuple[DecidedTrack, TrackMemory]]:
    """Each remembered track decided again against `gallery`, with its row."""
    decided = []
    for row in record.tracks:
        detail = row.detail or old_detail(row, old or VideoResult(record.video, "ok"))
        track = track_of(row, detail)
        decided.append((DecidedTrack(row.track_id, track,
                                     decide(gallery, track.embeddings, policy)), row))
    return decided


def rebuilt(old: VideoResult, record: VideoMemory, gallery: Gallery,
            rules: Rules) -> VideoResult:
    """The result a fresh recognition with `gallery` would publish (people, strangers)."""
    pairs = redecided(record, gallery, rules.policy, old)
    locator: FaceLocator = memory_crops([(d.track, row) for d, row in pairs])
    summary = summarize_decided([d for d, _ in pairs], gallery, rules.gap_s, rules.metadata,
                                locator)
    return VideoResult(video=old.video, status=old.status, duration_ms=old.duration_ms,
                       frames_sampled=old.frames_sampled, people=summary.people,
                       unknown_faces=summary.unknown_faces, strangers=summary.strangers,
                       error=old.error, stats=old.stats)


def _changed(row: TrackMemory, decided: DecidedTrack) -> bool:
    decision = decided.decision
    distance = decision.distance if decision.nearest is not None else None
    if (row.person, row.nearest) != (decision.person, decision.nearest):
        return True
    if row.distance is None or distance is None:
        return row.distance != distance
    return abs(row.distance - distance) > SAME_DISTANCE


def _updated(record: VideoMemory, pairs: list[tuple[DecidedTrack, TrackMemory]]) -> VideoMemory:
    for decided, row in pairs:
        decision = decided.decision
        row.person, row.nearest = decision.person, decision.nearest
        row.distance = float(decision.distance) if decision.nearest is not None else None
    return record


def published(ports: Ports, record: VideoMemory) -> tuple[VideoResult, dict[str, Any]] | None:
    """The published result of the record's content (as written), or None."""
    row = ports.metadata.get_video(record.video)
    if row is None or row.etag != record.etag or not row.result_key or row.status != "done":
        return None
    try:
        doc = json.loads(ports.output.get_bytes(row.result_key))
    except (ObjectNotFoundError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("video") != record.video:
        return None
    return VideoResult.from_dict(doc), doc


def relearn_video(ports: Ports, record: VideoMemory, gallery: Gallery, rules: Rules,
                  report: Relearned) -> None:
    """Decide one record again; republish its result and update it when that changed."""
    report.videos += 1
    pairs = redecided(record, gallery, rules.policy)
    if not any(_changed(row, decided) for decided, row in pairs):
        return
    report.changed += 1
    found = published(ports, record)
    if found is None:
        report.unpublished += 1
    else:
        old, doc = found
        new = rebuilt(old, record, gallery, rules)
        if new.to_dict() != VideoResult.from_dict(doc).to_dict():
            publish_result(ports, record.video, record.etag, new)
            report.republished += 1
    if not ports.memory.replace(_updated(record, pairs)):
        log.info("%s changed while being relearned: the next run decides it", record.video)


def relearn(ports: Ports, gallery: Gallery, rules: Rules,
            videos: Iterable[str] | None = None) -> Relearned:
    """Decide the remembered `videos` (default: every one made by the gallery's embedder)
    again against `gallery`, republishing the results that change."""
    report = Relearned()
    if videos is None:
        videos = [s.video for s in ports.memory.videos()
                  if s.embedder == gallery.embedder and s.tracks]
    for video in list(videos):
        record = ports.memory.get(video)
        if record is None or record.embedder != gallery.embedder:
            continue
        try:
            relearn_video(ports, record, gallery, rules, report)
        except FacereelError as exc:  # one unreadable result never stops the others
            log.warning("could not relearn %s: %s", record.video, exc.message)
    log.info("relearned", extra=report.to_dict())
    return report
