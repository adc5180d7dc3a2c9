"""Follow faces from one analysed frame to the next so a face is embedded once, not every frame.

Association is greedy on box overlap (or, for a face that moved, on a nearby centre and a
similar size). A track keeps its observations, the embeddings taken of it, and the refined time
span during which it was on screen.

A box in the same place is not enough to follow a face: at a cut, or when one person takes
another's place, the box barely moves. So the tracker can be told whether a detection still
looks like a track (`alike`, in practice `appearance.look_distance`); one that does not ends the
track in its place and starts a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from facereel.core.types import Box, Detection, FloatArray, box_iou

MIN_IOU = 0.3
MAX_CENTRE_SHIFT = 0.6  # in face widths
MAX_SIZE_RATIO = 1.6


@dataclass(slots=True)
class Observation:
    time_s: float
    box: Box
    score: float


@dataclass(slots=True)
class Track:
    id: int
    observations: list[Observation] = field(default_factory=list)
    shot_times: list[float] = field(default_factory=list)  # when shots were taken for embedding
    embeddings: list[FloatArray] = field(default_factory=list)  # filled by identification
    first_s: float = 0.0  # refined start of the current run on screen
    last_s: float = 0.0  # refined end
    spans: list[tuple[float, float]] = field(default_factory=list)  # closed runs on screen
    closed: bool = False

    @property
    def last_box(self) -> Box:
        return self.observations[-1].box

    @property
    def last_seen_s(self) -> float:
        return self.observations[-1].time_s

    def all_spans(self) -> list[tuple[float, float]]:
        return [*self.spans, (self.first_s, self.last_s)]


def same_face(a: Box, b: Box) -> bool:
    """Whether box `b` plausibly shows the same face as `a` a moment later."""
    if box_iou(a, b) >= MIN_IOU:
        return True
    width_a, width_b = a[2] - a[0], b[2] - b[0]
    if width_a <= 0 or width_b <= 0:
        return False
    ratio = max(width_a, width_b) / min(width_a, width_b)
    shift_x = (a[0] + a[2] - b[0] - b[2]) / 2
    shift_y = (a[1] + a[3] - b[1] - b[3]) / 2
    shift = (shift_x**2 + shift_y**2) ** 0.5
    return ratio <= MAX_SIZE_RATIO and shift <= MAX_CENTRE_SHIFT * max(width_a, width_b)


Alike = Callable[["Track", Detection], bool]  # whether a detection still looks like the track


@dataclass(slots=True)
class Update:
    """What one analysed frame changed: which tracks are new, continued, or went unseen, and
    which ended because another face took their place (old track, the new track there)."""

    new: list[tuple[Track, Detection]]
    continued: list[tuple[Track, Detection]]
    missed: list[Track]
    replaced: list[tuple[Track, Track]] = field(default_factory=list)


class Tracker:
    def __init__(self, max_gap_s: float) -> None:
        self.max_gap_s = max_gap_s
        self.tracks: list[Track] = []
        self._active: list[Track] = []

    @property
    def active(self) -> list[Track]:
        return list(self._active)

    def update(self, time_s: float, detections: list[Detection],
               alike: Alike | None = None) -> Update:
        """Continue tracks with the detections at `time_s`; a detection in a track's place that
        is not `alike` it ends that track and starts a new one."""
        pairs, refused = self._associate(detections, alike)
        matched_ids = {id(track) for track, _ in pairs}
        used = {id(det) for _, det in pairs}
        missed = [t for t in self._active if id(t) not in matched_ids]
        update = Update(new=[], continued=pairs, missed=missed)
        for track, det in pairs:
            track.observations.append(Observation(time_s, det.box, det.score))
        started: dict[int, Track] = {}
        for det in detections:
            if id(det) not in used:
                track = self._start(time_s, det)
                started[id(det)] = track
                update.new.append((track, det))
        for old, det in refused:
            if id(old) not in matched_ids and id(det) in started and not old.closed:
                self.close(old)
                update.replaced.append((old, started[id(det)]))
                missed.remove(old)
        return update

    def close(self, track: Track) -> None:
        """End `track`: it will not be continued."""
        track.closed = True
        if track in self._active:
            self._active.remove(track)

    def close_all(self) -> list[Track]:
        """End every track (at a cut nobody is followed into the next shot)."""
        ended = list(self._active)
        for track in ended:
            self.close(track)
        return ended

    def close_stale(self, time_s: float) -> list[Track]:
        """Close tracks unseen for longer than `max_gap_s`; they will not be continued."""
        stale = [t for t in self._active if time_s - t.last_seen_s > self.max_gap_s]
        for track in stale:
            self.close(track)
        return stale

    def _start(self, time_s: float, det: Detection) -> Track:
        track = Track(id=len(self.tracks), first_s=time_s, last_s=time_s)
        track.observations.append(Observation(time_s, det.box, det.score))
        self.tracks.append(track)
        self._active.append(track)
        return track

    def _associate(self, detections: list[Detection], alike: Alike | None) -> tuple[
            list[tuple[Track, Detection]], list[tuple[Track, Detection]]]:
        """Greedy pairs by overlap; and the pairs in the same place refused for their look."""
        candidates = [
            (box_iou(track.last_box, det.box), index, track, det)
            for index, track in enumerate(self._active)
            for det in detections
            if same_face(track.last_box, det.box)
        ]
        candidates.sort(key=lambda c: (-c[0], c[1]))
        pairs: list[tuple[Track, Detection]] = []
        refused: list[tuple[Track, Detection]] = []
        taken_tracks: set[int] = set()
        taken_dets: set[int] = set()
        for _, _, track, det in candidates:
            if id(track) in taken_tracks or id(det) in taken_dets:
                continue
            if alike is not None and not alike(track, det):
                refused.append((track, det))
                continue
            taken_tracks.add(id(track))
            taken_dets.add(id(det))
            pairs.append((track, det))
        return pairs, refused
