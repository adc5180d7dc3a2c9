"""Walk a video's frames once: detect on sampled frames, follow faces, embed on demand.

The loop keeps the frames decoded since the last analysed one; when a face appears or leaves
between two analysed frames, it bisects those buffered frames (detecting only around the face)
to time the change precisely, without decoding anything twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from facereel.core.faces import FaceModels
from facereel.core.media import Picture
from facereel.core.sampling import SamplingPlan
from facereel.core.tracking import Track, Tracker, Update, same_face
from facereel.core.types import Box

WantsEmbedding = Callable[[Track, float], bool]
ROI_MARGIN = 1.0  # search this many face widths around a face when refining its times


@dataclass(slots=True)
class Analysis:
    tracks: list[Track] = field(default_factory=list)
    frames_decoded: int = 0
    frames_sampled: int = 0
    detections_run: int = 0
    faces_embedded: int = 0
    last_time_s: float = 0.0


class Analyzer:
    """Runs one sampling plan over a stream of pictures with the given face models."""

    def __init__(self, models: FaceModels, plan: SamplingPlan, wants_embedding: WantsEmbedding,
                 max_gap_s: float = 1.0) -> None:
        self.models = models
        self.plan = plan
        self.wants_embedding = wants_embedding
        self.max_gap_s = max_gap_s

    def run(self, pictures: Iterable[Picture]) -> Analysis:
        result = Analysis()
        tracker = Tracker(max(self.max_gap_s, self.plan.interval_s * 1.5))
        buffer: list[Picture] = []
        previous: Picture | None = None
        last: Picture | None = None
        for picture in pictures:
            result.frames_decoded += 1
            last = picture
            if previous is None or self._is_sample(picture, previous):
                self._analyse(picture, previous, buffer, tracker, result)
                previous, buffer = picture, []
                if self.plan.mode == "first":
                    break
            elif self.plan.refine:
                buffer.append(picture)
        if last is not None and last is not previous and self.plan.include_last:
            if buffer and buffer[-1] is last:
                buffer.pop()
            self._analyse(last, previous, buffer, tracker, result)
        result.tracks = tracker.tracks
        result.last_time_s = last.time_s if last is not None else 0.0
        return result

    def _is_sample(self, picture: Picture, previous: Picture) -> bool:
        if self.plan.every_frame:
            return True
        # a little slack so a 30 fps stream sampled every 0.5 s does not drift a frame each time
        return picture.time_s - previous.time_s >= self.plan.interval_s - 0.01

    def _analyse(self, picture: Picture, previous: Picture | None, buffer: list[Picture],
                 tracker: Tracker, result: Analysis) -> None:
        result.frames_sampled += 1
        result.detections_run += 1
        detections = self.models.detect(picture)
        update = tracker.update(picture.time_s, detections)
        self._time_changes(update, picture, previous, buffer, result)
        tracker.close_stale(picture.time_s)
        self._embed(update, picture, result)

    def _time_changes(self, update: Update, picture: Picture, previous: Picture | None,
                      buffer: list[Picture], result: Analysis) -> None:
        now = picture.time_s
        before = previous.time_s if previous is not None else now
        refine = self.plan.refine and previous is not None
        for track, det in update.new:
            track.first_s = track.last_s = now
            if refine:
                track.first_s = self._boundary(buffer, before, now, det.box, False, result)
        for track, det in update.continued:
            if track.last_s < before:  # back after being unseen: a new run on screen
                track.spans.append((track.first_s, track.last_s))
                track.first_s = now
                if refine:
                    track.first_s = self._boundary(buffer, before, now, det.box, False, result)
            track.last_s = now
        for track in update.missed:
            if refine and track.last_s >= before:
                track.last_s = self._boundary(buffer, before, now, track.last_box, True, result)

    def _boundary(self, buffer: list[Picture], before: float, now: float, box: Box,
                  present_before: bool, result: Analysis) -> float:
        """Bisect the frames between two samples for when the face at `box` came or went.

        Index 0 is the previous sample, 1..n the buffered frames, n+1 the current sample; the
        face's presence differs between the ends. Returns the time of the frame nearest the
        change on the side where the face is visible.
        """
        times = [before, *(p.time_s for p in buffer), now]
        low, high = 0, len(times) - 1
        while high - low > 1 and times[high] - times[low] > self.plan.precision_s:
            middle = (low + high) // 2
            if self._present(buffer[middle - 1], box, result) == present_before:
                low = middle
            else:
                high = middle
        return times[low] if present_before else times[high]

    def _present(self, picture: Picture, box: Box, result: Analysis) -> bool:
        result.detections_run += 1
        width = box[2] - box[0]
        margin = round(width * ROI_MARGIN)
        roi = (box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin)
        return any(same_face(box, d.box) for d in self.models.detect(picture, roi=roi))

    def _embed(self, update: Update, picture: Picture, result: Analysis) -> None:
        now = picture.time_s
        todo = [(t, d) for t, d in update.new]
        todo += [(t, d) for t, d in update.continued if self.wants_embedding(t, now)]
        if not todo:
            return
        vectors = self.models.embed(picture.rgb(), [d.box for _, d in todo])
        result.faces_embedded += len(todo)
        for (track, _), vector in zip(todo, vectors, strict=True):
            track.embeddings.append(vector)
            track.embed_times.append(now)
