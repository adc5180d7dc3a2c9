"""Walk a video's frames once: detect on sampled frames, follow faces, take shots of them.

Adaptive sampling analyses a frame every `interval` seconds. Every other one (so at least once a
second) is a *full* detection over the whole frame; the ones between are *light*: they look only
around the faces already followed, unless the scene was cut since the previous analysed frame
(then they are full too). A followed face is shot (cropped for embedding) when first seen and a
few times more (see `shots.VotePolicy`), not on every frame.

Following never carries a face across a change of person:
- at a *cut* (a grey thumbnail's histograms, whole and per block, differ a lot from the previous
  analysed frame's) every track ends and the faces after it start new tracks;
- a followed face whose *look* (appearance.Look) jumps between two observations ends its track and
  a new one starts; a smaller jump takes an extra shot on each side, so identification (which
  splits a track whose shots disagree, see people.py) has evidence of both faces.

The loop keeps the frames decoded since the last full detection; when a face appears or leaves,
or a cut or a jump happens, between two analysed frames, it bisects those buffered frames to time
the change precisely, without decoding anything twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from facereel.core.appearance import Look, Scene, look_at, look_distance, scene_change, scene_of
from facereel.core.media import Picture
from facereel.core.sampling import SamplingPlan
from facereel.core.shots import ShotSink, VotePolicy, capture
from facereel.core.tracking import Alike, Track, Tracker, Update, same_face
from facereel.core.types import Box, Detection, ImageArray, box_iou

REFINE_MARGIN = 0.6  # search this many face widths around a face when timing its changes
FOLLOW_MARGIN = 0.5  # ...and this many when following it on a light sample
# Thresholds on appearance.scene_change / look_distance, calibrated on the real clips by
# bench/cuts.py (the figures are in the README, "How it works"):
CUT_SCORE = 0.47  # a cut: within a clip <= 0.39 at 0.5 s apart, across clips >= 0.56
LOOK_JUMP = 0.35  # another face: the track ends, a new one starts (same face <= 0.27)
LOOK_DOUBT = 0.25  # perhaps another face: shoot it on both sides for identification to check
# A face with less of its box inside the frame is shot only when first seen (bench in README)
WHOLE_FACE = 0.95


class FaceFinder(Protocol):
    """What analysis needs of the face models (FaceModels is one)."""

    def detection_scale(self, width: int, height: int) -> float: ...

    def detect(self, picture: Picture, roi: Box | None = None,
               face_px: int = 0) -> list[Detection]: ...


@dataclass(slots=True)
class Analysis:
    tracks: list[Track] = field(default_factory=list)
    frames_decoded: int = 0
    frames_sampled: int = 0
    full_detections: int = 0
    detections_run: int = 0
    shots_taken: int = 0
    last_time_s: float = 0.0
    faces: dict[int, bytes] = field(default_factory=dict)  # track id -> first shot (JPEG)


@dataclass(frozen=True, slots=True)
class _Cut:
    before_s: float  # the last frame before the cut (the previous sample when none between)
    after_s: float  # the first frame after it


@dataclass(slots=True)
class _Run:
    tracker: Tracker
    result: Analysis = field(default_factory=Analysis)
    # frames decoded since the last full detection (thinned to ~precision/3 apart): where
    # appearances, departures, cuts and jumps are bisected without decoding anything again
    buffer: list[Picture] = field(default_factory=list)
    previous: Picture | None = None
    previous_scene: Scene | None = None
    last_full_s: float = float("-inf")
    window_start_s: float = 0.0  # the full detection before the current one
    looks: dict[int, Look] = field(default_factory=dict)  # track id -> look when last seen
    jumps: dict[int, float] = field(default_factory=dict)  # track id -> look distance now


def roi_around(box: Box, margin: float) -> Box:
    pad = round((box[2] - box[0]) * margin)
    return (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)


def _dedupe(detections: list[Detection]) -> list[Detection]:
    """Drop detections that repeat a stronger one (overlapping search regions find it twice)."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: -d.score):
        if all(box_iou(det.box, k.box) < 0.5 for k in kept):
            kept.append(det)
    return kept


class Analyzer:
    """Runs one sampling plan over a stream of pictures with the given face models."""

    def __init__(self, models: FaceFinder, plan: SamplingPlan, sink: ShotSink,
                 votes: VotePolicy | None = None, max_gap_s: float = 1.0,
                 presence_score: float = 0.0) -> None:
        self.models = models
        self.plan = plan
        self.sink = sink
        self.votes = votes or VotePolicy()
        self.max_gap_s = max_gap_s
        self.presence_score = presence_score

    def run(self, pictures: Iterable[Picture]) -> Analysis:
        run = _Run(Tracker(max(self.max_gap_s, self.plan.interval_s * 2.5)))
        last: Picture | None = None
        for picture in pictures:
            run.result.frames_decoded += 1
            last = picture
            if run.previous is None or self._is_sample(picture, run.previous):
                self._analyse(picture, run)
                if self.plan.mode == "first":
                    break
            elif self.plan.refine:
                self._keep(picture, run)
        if last is not None and last is not run.previous and self.plan.include_last:
            if run.buffer and run.buffer[-1] is last:
                run.buffer.pop()
            self._analyse(last, run)
        self.sink.flush()
        run.result.tracks = run.tracker.tracks
        run.result.last_time_s = last.time_s if last is not None else 0.0
        return run.result

    def _is_sample(self, picture: Picture, previous: Picture) -> bool:
        if self.plan.every_frame:
            return True
        # a little slack so a 30 fps stream sampled every 0.5 s does not drift a frame each time
        return picture.time_s - previous.time_s >= self.plan.interval_s - 0.01

    def _keep(self, picture: Picture, run: _Run) -> None:
        if not run.buffer or picture.time_s - run.buffer[-1].time_s >= self.plan.precision_s / 3:
            run.buffer.append(picture)

    def _analyse(self, picture: Picture, run: _Run) -> None:
        run.result.frames_sampled += 1
        # a single frame has no cut to find (and its thumbnail would cost ~1 ms)
        scene = None if self.plan.mode == "first" else scene_of(picture)
        cut = self._find_cut(picture, scene, run)
        full = cut is not None or self._full_due(picture, run)
        if full:
            run.window_start_s = run.last_full_s if run.previous is not None else picture.time_s
            run.last_full_s = picture.time_s
            run.result.full_detections += 1
        if cut is not None:
            self._end_at_cut(cut, run)
        detections = self._detect(picture, run, full)
        looks = self._looks(picture, detections)
        run.jumps = {}
        update = run.tracker.update(picture.time_s, detections, self._alike(picture, run))
        for track, det in [*update.new, *update.continued]:
            if id(det) in looks:
                run.looks[track.id] = looks[id(det)]
        self._time_changes(update, picture, run, full, cut)
        for track in run.tracker.close_stale(picture.time_s):
            run.looks.pop(track.id, None)
        self._shoot(update, picture, run)
        run.previous, run.previous_scene = picture, scene
        if full:
            run.buffer = []
        elif self.plan.refine:
            run.buffer.append(picture)

    def _full_due(self, picture: Picture, run: _Run) -> bool:
        """Full-frame detection: always outside adaptive mode; in it, at least every
        2 x interval (and at every cut, see `_find_cut`)."""
        if not self.plan.refine:
            return True
        return picture.time_s - run.last_full_s >= 2 * self.plan.interval_s - 0.02

    def _find_cut(self, picture: Picture, scene: Scene | None, run: _Run) -> _Cut | None:
        """A cut between the previous analysed frame and this one, timed by bisecting the
        frames between them (each is nearer in tone to the side of the cut it lies on)."""
        previous, before = run.previous, run.previous_scene
        if (previous is None or before is None or scene is None
                or scene_change(before, scene) <= CUT_SCORE):
            return None
        frames = self._between(run, previous.time_s, picture.time_s)
        low, high = -1, len(frames)
        while high - low > 1:
            middle = (low + high) // 2
            probe = scene_of(frames[middle])
            if scene_change(probe, before) <= scene_change(probe, scene):
                low = middle
            else:
                high = middle
        return _Cut(frames[low].time_s if low >= 0 else previous.time_s,
                    frames[high].time_s if high < len(frames) else picture.time_s)

    def _end_at_cut(self, cut: _Cut, run: _Run) -> None:
        """End every track; one on screen at the previous sample stays until the cut at most."""
        previous_s = run.previous.time_s if run.previous is not None else cut.before_s
        for track in run.tracker.close_all():
            run.looks.pop(track.id, None)
            if self.plan.refine and track.last_seen_s >= previous_s:
                present = self._presence(track.last_box, run.result)
                track.last_s = self._boundary(run, track.last_s, cut.after_s, present, True,
                                              edge=True)

    def _detect(self, picture: Picture, run: _Run, full: bool) -> list[Detection]:
        run.result.detections_run += 1 if full else len(run.tracker.active)
        if full:
            return self.models.detect(picture)
        found: list[Detection] = []
        for track in run.tracker.active:
            box = track.last_box
            found += self.models.detect(picture, roi_around(box, FOLLOW_MARGIN), box[2] - box[0])
        return _dedupe(found)

    def _gray(self, picture: Picture) -> tuple[ImageArray, float]:
        """The grey frame detection used (a video picture caches it), and its scale."""
        scale = self.models.detection_scale(picture.width, picture.height)
        return picture.gray(scale), scale

    def _looks(self, picture: Picture, detections: list[Detection]) -> dict[int, Look]:
        if self.plan.mode == "first" or not detections:
            return {}  # a single frame: nothing to compare a look with
        gray, scale = self._gray(picture)
        return {id(det): look_at(gray, scale, det.box) for det in detections}

    def _alike(self, picture: Picture, run: _Run) -> Alike | None:
        """Whether a detection still looks like the track it would continue."""
        if self.plan.mode == "first" or not run.looks:
            return None
        gray, scale = self._gray(picture)

        def alike(track: Track, det: Detection) -> bool:
            look = run.looks.get(track.id)
            if look is None:
                return True
            distance = look_distance(look, gray, scale, det.box)
            run.jumps[track.id] = distance
            return distance < LOOK_JUMP

        return alike

    def _time_changes(self, update: Update, picture: Picture, run: _Run, full: bool,
                      cut: _Cut | None) -> None:
        now = picture.time_s
        refine = self.plan.refine and run.previous is not None
        previous_s = run.previous.time_s if run.previous is not None else now
        # where a newly seen face was last known to be absent: the previous full detection
        # (light samples only look around known faces), or the cut
        absent_s = run.window_start_s if full else previous_s
        if cut is not None:
            absent_s = max(absent_s, cut.before_s)
        replacing = {id(new): old for old, new in update.replaced if old.last_seen_s >= previous_s}
        for track, det in update.new:
            track.first_s = track.last_s = now
            old = replacing.get(id(track))
            if refine and old is not None:
                self._time_replacement(old, track, run, previous_s, now)
            elif refine:
                present = self._presence(det.box, run.result)
                track.first_s = self._boundary(run, absent_s, now, present, False,
                                               edge=cut is not None)
        for old, _ in update.replaced:
            run.looks.pop(old.id, None)
        for track, det in update.continued:
            if track.last_s < previous_s:  # back after being unseen: a new run on screen
                track.spans.append((track.first_s, track.last_s))
                start = max(track.last_s, absent_s)
                present = self._presence(det.box, run.result)
                track.first_s = (self._boundary(run, start, now, present, False) if refine
                                 else now)
            track.last_s = now
        for track in update.missed:
            if refine and track.last_s >= previous_s:
                present = self._presence(track.last_box, run.result)
                track.last_s = self._boundary(run, track.last_s, now, present, True)

    def _time_replacement(self, old: Track, new: Track, run: _Run, previous_s: float,
                          now: float) -> None:
        """Another face took `old`'s place between the previous sample and now: `old` lasts
        while the face there looks more like it than like `new`, and `new` starts after."""
        old_look, new_look = run.looks[old.id], run.looks[new.id]
        box = new.last_box
        old.last_s = self._boundary(
            run, previous_s, now, self._resemblance(box, old_look, new_look, run.result), True)
        new.first_s = self._boundary(
            run, previous_s, now, self._resemblance(box, new_look, old_look, run.result), False)

    def _between(self, run: _Run, start: float, end: float) -> list[Picture]:
        return [p for p in run.buffer if start < p.time_s < end]

    def _boundary(self, run: _Run, start: float, now: float, test: Callable[[Picture], bool],
                  present_before: bool, edge: bool = False) -> float:
        """Bisect the buffered frames between `start` and `now` for when the face came or went.

        `test` tells whether the face is there; it differs between the two ends. Returns the
        time of the frame nearest the change on the side where the face is visible. With
        `edge`, the frame at the far end (next to a cut) is tried first: a face on screen until
        a cut usually stays until its last frame.
        """
        frames = self._between(run, start, now)
        times = [start, *(p.time_s for p in frames), now]
        low, high = 0, len(times) - 1
        if edge and high - low > 1:
            probe = high - 1 if present_before else low + 1
            if test(frames[probe - 1]) == present_before:
                low = probe
            else:
                high = probe
        while high - low > 1 and times[high] - times[low] > self.plan.precision_s:
            middle = (low + high) // 2
            if test(frames[middle - 1]) == present_before:
                low = middle
            else:
                high = middle
        return times[low] if present_before else times[high]

    def _face_at(self, picture: Picture, box: Box, result: Analysis) -> Detection | None:
        """A confident face at `box` (weak detections, which textures also give, would stretch
        appearances into the face-free frames around them)."""
        result.detections_run += 1
        found = self.models.detect(picture, roi_around(box, REFINE_MARGIN), box[2] - box[0])
        confident = [d for d in found if same_face(box, d.box) and d.score >= self.presence_score]
        return max(confident, key=lambda d: box_iou(box, d.box), default=None)

    def _presence(self, box: Box, result: Analysis) -> Callable[[Picture], bool]:
        return lambda picture: self._face_at(picture, box, result) is not None

    def _resemblance(self, box: Box, look: Look, other: Look,
                     result: Analysis) -> Callable[[Picture], bool]:
        """A test: is the face at `box` there and more like `look` than like `other`?"""
        def test(picture: Picture) -> bool:
            det = self._face_at(picture, box, result)
            if det is None:
                return False
            gray, scale = self._gray(picture)
            return (look_distance(look, gray, scale, det.box)
                    < look_distance(other, gray, scale, det.box))

        return test

    def _shoot(self, update: Update, picture: Picture, run: _Run) -> None:
        now = picture.time_s
        todo = list(update.new)
        for track, det in update.continued:
            # A face cut by the frame's edge aligns and embeds poorly (test_30's Floki with
            # his brow cut off: 0.75 from himself, nearer Trump), and its look changes with
            # the cut: it is not shot again (a vote waits for a frame where it is whole).
            whole = det.inside >= WHOLE_FACE
            doubt = whole and run.jumps.get(track.id, 0.0) >= LOOK_DOUBT
            if doubt:
                self._shoot_previous(track, run)
            if doubt or (whole and self.votes.wants(track.shot_times, now)):
                todo.append((track, det))
        if not todo:
            return
        rgb = picture.rgb()
        for track, det in todo:
            shot = capture(rgb, det.box, now, mirror=not track.shot_times)
            track.shot_times.append(now)
            self.sink.add(track, shot)
        run.result.shots_taken += len(todo)

    def _shoot_previous(self, track: Track, run: _Run) -> None:
        """Shoot a doubtful track at the previous sample too (if seen and not shot there), so
        its shots show the face on both sides of the doubt."""
        previous = run.previous
        if previous is None or len(track.observations) < 2:
            return
        before = track.observations[-2]
        if before.time_s != previous.time_s or (track.shot_times
                                                and track.shot_times[-1] >= before.time_s):
            return
        shot = capture(previous.rgb(), before.box, before.time_s, mirror=not track.shot_times)
        track.shot_times.append(before.time_s)
        self.sink.add(track, shot)
        run.result.shots_taken += 1
