"""Follow faces from one analysed frame to the next so a face is embedded once, not every frame.

Association is greedy on box overlap (or, for a face that moved, on a nearby centre and a
similar size). A track keeps its observations, the embeddings taken of it, and the refined time
span during which it was on screen.
"""

from __future__ import annotations

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


@dataclass(slots=True)
class Update:
    """What one analysed frame changed: which tracks are new, continued, or went unseen."""

    new: list[tuple[Track, Detection]]
    continued: list[tuple[Track, Detection]]
    missed: list[Track]


class Tracker:
    def __init__(self, max_gap_s: float) -> None:
        self.max_gap_s = max_gap_s
        self.tracks: list[Track] = []
        self._active: list[Track] = []

    @property
    def active(self) -> list[Track]:
        return list(self._active)

    def update(self, time_s: float, detections: list[Detection]) -> Update:
        pairs = self._associate(detections)
        matched_ids = {id(track) for track, _ in pairs}
        used = {id(det) for _, det in pairs}
        update = Update(new=[], continued=pairs, missed=[])
        for track, det in pairs:
            track.observations.append(Observation(time_s, det.box, det.score))
        for track in self._active:
            if id(track) not in matched_ids:
                update.missed.append(track)
        for det in detections:
            if id(det) not in used:
                track = Track(id=len(self.tracks), first_s=time_s, last_s=time_s)
                track.observations.append(Observation(time_s, det.box, det.score))
                self.tracks.append(track)
                self._active.append(track)
                update.new.append((track, det))
        return update

    def close_stale(self, time_s: float) -> list[Track]:
        """Close tracks unseen for longer than `max_gap_s`; they will not be continued."""
        stale = [t for t in self._active if time_s - t.last_seen_s > self.max_gap_s]
        for track in stale:
            track.closed = True
            self._active.remove(track)
        return stale

    def _associate(self, detections: list[Detection]) -> list[tuple[Track, Detection]]:
        candidates = [
            (box_iou(track.last_box, det.box), index, track, det)
            for index, track in enumerate(self._active)
            for det in detections
            if same_face(track.last_box, det.box)
        ]
        candidates.sort(key=lambda c: (-c[0], c[1]))
        pairs: list[tuple[Track, Detection]] = []
        taken_tracks: set[int] = set()
        taken_dets: set[int] = set()
        for _, _, track, det in candidates:
            if id(track) in taken_tracks or id(det) in taken_dets:
                continue
            taken_tracks.add(id(track))
            taken_dets.add(id(det))
            pairs.append((track, det))
        return pairs
