"""Walk a video's frames once: detect on sampled frames, follow faces, embed on demand.

Adaptive sampling analyses a frame every `interval` seconds. Every other one (so at least once a
second) is a *full* detection over the whole frame; the ones between are *light*: they look only
around the faces already followed, unless the scene changed since the last full detection (then
they are full too). A followed face is shot (cropped for embedding) when first seen and a few
times more (see `shots.VotePolicy`), not on every frame.

The loop keeps the frames decoded since the last analysed one; when a face appears or leaves
between two analysed frames, it bisects those buffered frames (detecting only around the face)
to time the change precisely, without decoding anything twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from facereel.core.faces import FaceModels
from facereel.core.media import Picture
from facereel.core.sampling import SamplingPlan
from facereel.core.shots import ShotSink, VotePolicy, capture
from facereel.core.tracking import Track, Tracker, Update, same_face
from facereel.core.types import Box, Detection, FloatArray, box_iou

REFINE_MARGIN = 0.6  # search this many face widths around a face when timing its changes
FOLLOW_MARGIN = 0.5  # ...and this many when following it on a light sample
THUMB_WIDTH = 64  # width of the thumbnail whose histogram tells a cut from camera motion
SCENE_CHANGE = 0.25  # histogram difference (0..1) that counts as a new scene


@dataclass(slots=True)
class Analysis:
    tracks: list[Track] = field(default_factory=list)
    frames_decoded: int = 0
    frames_sampled: int = 0
    full_detections: int = 0
    detections_run: int = 0
    shots_taken: int = 0
    last_time_s: float = 0.0


@dataclass(slots=True)
class _Run:
    tracker: Tracker
    result: Analysis = field(default_factory=Analysis)
    # frames decoded since the last full detection (thinned to ~precision/3 apart): where
    # appearances and departures are bisected without decoding anything again
    buffer: list[Picture] = field(default_factory=list)
    previous: Picture | None = None
    last_full_s: float = float("-inf")
    window_start_s: float = 0.0  # the full detection before the current one
    last_full_histogram: FloatArray | None = None


def _histogram(picture: Picture) -> FloatArray:
    thumb = picture.gray(THUMB_WIDTH / max(1, picture.width))
    counts = np.bincount(thumb.ravel() >> 3, minlength=32).astype(np.float32)
    return counts / max(1.0, float(counts.sum()))


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

    def __init__(self, models: FaceModels, plan: SamplingPlan, sink: ShotSink,
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
        full = self._full_due(picture, run)
        if full:
            run.window_start_s = run.last_full_s if run.previous is not None else picture.time_s
            run.last_full_s = picture.time_s
            run.result.full_detections += 1
        detections = self._detect(picture, run, full)
        update = run.tracker.update(picture.time_s, detections)
        self._time_changes(update, picture, run, full)
        run.tracker.close_stale(picture.time_s)
        self._shoot(update, picture, run.result)
        run.previous = picture
        if full:
            run.buffer = []
        elif self.plan.refine:
            run.buffer.append(picture)

    def _full_due(self, picture: Picture, run: _Run) -> bool:
        """Full-frame detection: always outside adaptive mode; in it, at least every
        2 x interval, and on a cut (the thumbnail's histogram changed a lot)."""
        if not self.plan.refine:
            return True
        histogram = _histogram(picture)
        changed = run.last_full_histogram is None or (
            0.5 * float(np.abs(histogram - run.last_full_histogram).sum()) > SCENE_CHANGE
        )
        due = picture.time_s - run.last_full_s >= 2 * self.plan.interval_s - 0.02
        if due or changed:
            run.last_full_histogram = histogram
        return due or changed

    def _detect(self, picture: Picture, run: _Run, full: bool) -> list[Detection]:
        run.result.detections_run += 1 if full else len(run.tracker.active)
        if full:
            return self.models.detect(picture)
        found: list[Detection] = []
        for track in run.tracker.active:
            box = track.last_box
            found += self.models.detect(picture, roi_around(box, FOLLOW_MARGIN), box[2] - box[0])
        return _dedupe(found)

    def _time_changes(self, update: Update, picture: Picture, run: _Run, full: bool) -> None:
        now = picture.time_s
        refine = self.plan.refine and run.previous is not None
        previous_s = run.previous.time_s if run.previous is not None else now
        # where a newly seen face was last known to be absent: the previous full detection
        # (light samples only look around known faces)
        absent_s = run.window_start_s if full else previous_s
        for track, det in update.new:
            track.first_s = track.last_s = now
            if refine:
                track.first_s = self._boundary(run, absent_s, now, det.box, False)
        for track, det in update.continued:
            if track.last_s < previous_s:  # back after being unseen: a new run on screen
                track.spans.append((track.first_s, track.last_s))
                start = max(track.last_s, absent_s)
                track.first_s = self._boundary(run, start, now, det.box, False) if refine else now
            track.last_s = now
        for track in update.missed:
            if refine and track.last_s >= previous_s:
                track.last_s = self._boundary(run, track.last_s, now, track.last_box, True)

    def _boundary(self, run: _Run, start: float, now: float, box: Box,
                  present_before: bool) -> float:
        """Bisect the buffered frames between `start` and `now` for when the face came or went.

        The face's presence differs between the two ends; returns the time of the frame nearest
        the change on the side where the face is visible.
        """
        frames = [p for p in run.buffer if start < p.time_s < now]
        times = [start, *(p.time_s for p in frames), now]
        low, high = 0, len(times) - 1
        while high - low > 1 and times[high] - times[low] > self.plan.precision_s:
            middle = (low + high) // 2
            if self._present(frames[middle - 1], box, run.result) == present_before:
                low = middle
            else:
                high = middle
        return times[low] if present_before else times[high]

    def _present(self, picture: Picture, box: Box, result: Analysis) -> bool:
        """Whether a confident face is at `box` (weak detections, which textures also give,
        would stretch appearances into the face-free frames around them)."""
        result.detections_run += 1
        found = self.models.detect(picture, roi_around(box, REFINE_MARGIN), box[2] - box[0])
        return any(same_face(box, d.box) and d.score >= self.presence_score for d in found)

    def _shoot(self, update: Update, picture: Picture, result: Analysis) -> None:
        now = picture.time_s
        todo = list(update.new)
        todo += [(t, d) for t, d in update.continued if self.votes.wants(t.shot_times, now)]
        if not todo:
            return
        rgb = picture.rgb()
        for track, det in todo:
            track.shot_times.append(now)
            self.sink.add(track, capture(rgb, det.box, now))
        result.shots_taken += len(todo)
