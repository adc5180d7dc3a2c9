"""Who is in this video or image: the core's entry point for one input.

`Recognizer.recognize(path)` never raises for a bad input: it returns an `error` result with a
code and a message, so a broken file in a batch costs one record and nothing else.

A long video can be analysed in time windows (`analyze(path, start_s, end_s)`, e.g. on several
workers) and the windows' partial analyses combined with `combine` into one result: tracks carry
absolute times and embeddings, so people, appearances and strangers merge across windows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from facereel.core.analysis import Analysis, Analyzer
from facereel.core.faces import FaceModels
from facereel.core.gallery import Gallery
from facereel.core.identify import EmbeddingSink
from facereel.core.match import MatchPolicy
from facereel.core.media import (
    DEFAULT_MAX_PIXELS,
    Picture,
    VideoPicture,
    VideoSource,
    load_image,
)
from facereel.core.people import (
    DecidedTrack,
    FaceLocator,
    MetadataLookup,
    summarize,
    to_ms,
)
from facereel.core.results import ErrorInfo, VideoResult
from facereel.core.sampling import SamplingPlan
from facereel.core.shots import ShotSink, VotePolicy
from facereel.core.sniff import classify
from facereel.core.tracking import Track
from facereel.errors import ConfigError, FacereelError, GalleryError

log = logging.getLogger(__name__)

# what analysing an input gives: the analysis, the declared duration, a damage report
_Outcome = tuple[Analysis, float, ErrorInfo | None]


@dataclass(frozen=True, slots=True)
class RecognizeOptions:
    sampling: SamplingPlan = field(default_factory=SamplingPlan)
    policy: MatchPolicy = field(default_factory=MatchPolicy)
    votes: VotePolicy = field(default_factory=VotePolicy)
    appearance_gap_s: float = 1.0  # unseen for longer than this = a separate appearance
    max_pixels: int = DEFAULT_MAX_PIXELS
    decode_threads: int = 1
    budget_s: float | None = None  # an analysis running longer stops with a `timeout` error
    keep_faces: bool = False  # keep each track's first shot (JPEG) for results to show
    # 0..1 score a followed face must reach once to count as a face; None = the detector's own
    # (`FaceModels.presence_score`). `combine` without face models needs it set.
    presence_score: float | None = None


@dataclass(slots=True)
class PartialAnalysis:
    """What one input (or one time window of it) showed, before identities are decided."""

    video: str
    analysis: Analysis = field(default_factory=Analysis)
    duration_s: float = 0.0
    elapsed_s: float = 0.0
    error: ErrorInfo | None = None


class MediaAnalyzer:
    """Loaded face models + options: analyses inputs, sending face shots to a sink (by default
    embedding them here, in batches). Needs no gallery: identities are decided in `combine`."""

    def __init__(self, models: FaceModels, options: RecognizeOptions | None = None) -> None:
        self.models = models
        options = options or RecognizeOptions()
        if options.presence_score is None:
            options = replace(options, presence_score=models.presence_score)
        self.options = options

    def analyze(self, path: Path, start_s: float = 0.0, end_s: float | None = None,
                sink: ShotSink | None = None) -> PartialAnalysis:
        """Analyse a whole input, or the window [start_s, end_s) of a video."""
        path = Path(path)
        return self._guarded(path.name, lambda: self._analyse_path(path, start_s, end_s, sink))

    def analyze_image_bytes(self, data: bytes, name: str,
                            sink: ShotSink | None = None) -> PartialAnalysis:
        return self._guarded(name, lambda: self._analyse_pictures(
            [load_image(data, name, self.options.max_pixels)], SamplingPlan("first"), sink))

    def _guarded(self, name: str, work: Callable[[], _Outcome]) -> PartialAnalysis:
        started = time.perf_counter()
        part = PartialAnalysis(name)
        try:
            part.analysis, part.duration_s, part.error = work()
        except FacereelError as exc:
            part.error = ErrorInfo(exc.code, exc.message)
        except MemoryError:
            part.error = ErrorInfo("too_large", f"{name}: ran out of memory")
        except Exception as exc:  # a bug must not sink the batch; log it with its traceback
            log.exception("unexpected failure on %s", name)
            part.error = ErrorInfo("internal_error", f"{name}: {exc!r}")
        part.elapsed_s = time.perf_counter() - started
        return part

    def _analyse_path(self, path: Path, start_s: float, end_s: float | None,
                      sink: ShotSink | None) -> _Outcome:
        if classify(path) == "image":
            picture = load_image(path, path.name, self.options.max_pixels)
            return self._analyse_pictures([picture], SamplingPlan("first"), sink)
        options = self.options
        threads, limit = options.decode_threads, options.max_pixels
        with VideoSource(path, threads=threads, max_pixels=limit) as video:
            pictures = video.pictures(options.sampling.decode_mode, start_s, end_s)
            if options.budget_s is not None:
                pictures = within_budget(pictures, options.budget_s, path.name)
            analysis, _, _ = self._analyse_pictures(pictures, options.sampling, sink)
            error = None
            if end_s is None:
                try:
                    video.check_complete()
                except FacereelError as exc:
                    # keep what the decodable part showed, but say plainly the input is damaged
                    error = ErrorInfo(exc.code, exc.message)
            return analysis, video.info.duration_s, error

    def _analyse_pictures(self, pictures: Iterable[Picture], plan: SamplingPlan,
                          sink: ShotSink | None) -> _Outcome:
        own = EmbeddingSink(self.models, keep_faces=self.options.keep_faces)
        analyzer = Analyzer(self.models, plan, sink or own, self.options.votes,
                            self.options.appearance_gap_s, presence(self.options))
        analysis = analyzer.run(pictures)
        analysis.faces = own.faces
        return analysis, 0.0, None


def within_budget(pictures: Iterator[VideoPicture], budget_s: float,
                  name: str) -> Iterator[VideoPicture]:
    """The pictures, until `budget_s` seconds have passed since the first was asked for: a
    hostile or huge input (8192x8192 frames, hours of video) then ends as one `timeout`
    error record instead of holding a worker (or a Lambda) past its time limit."""
    deadline = time.monotonic() + budget_s
    for picture in pictures:
        if time.monotonic() > deadline:
            raise FacereelError(f"{name}: analysis took longer than its time budget of "
                                f"{budget_s:g} s (raise FACEREEL_STAGE_BUDGET, or lower "
                                "FACEREEL_WINDOW so windows are shorter)", "timeout")
        yield picture


def presence(options: RecognizeOptions) -> float:
    if options.presence_score is None:
        raise ConfigError("RecognizeOptions.presence_score is not set: take it from the face "
                          "models (FaceModels.presence_score) or the settings")
    return options.presence_score


class Recognizer(MediaAnalyzer):
    """A MediaAnalyzer with a gallery (and metadata): answers who is in an input."""

    def __init__(self, models: FaceModels, gallery: Gallery,
                 options: RecognizeOptions | None = None,
                 metadata: MetadataLookup | None = None) -> None:
        if gallery.embedder != models.embedder_id:
            raise GalleryError(
                f"the gallery holds '{gallery.embedder}' vectors but the configured embedder is "
                f"'{models.embedder_id}'",
                "embedder_mismatch",
            )
        super().__init__(models, options)
        self.gallery = gallery
        self.metadata = metadata

    def recognize(self, path: Path) -> VideoResult:
        path = Path(path)
        return combine(path.name, [self.analyze(path)], self.gallery, self.options,
                       self.metadata)

    def recognize_image_bytes(self, data: bytes, name: str) -> VideoResult:
        part = self.analyze_image_bytes(data, name)
        return combine(name, [part], self.gallery, self.options, self.metadata)


WINDOW_TRACK_STRIDE = 100_000  # track ids of window n start at n * stride once joined


def number_windows(parts: list[PartialAnalysis]) -> None:
    """Make the track ids of a video's windows (given in window order) distinct: window n's
    ids are offset by n * WINDOW_TRACK_STRIDE, as the pipeline numbers the parts it joins,
    so a track keeps one id whichever host analysed it."""
    for number, part in enumerate(parts):
        offset = number * WINDOW_TRACK_STRIDE
        if not offset:
            continue
        for track in part.analysis.tracks:
            track.id += offset
        part.analysis.faces = {tid + offset: face
                               for tid, face in part.analysis.faces.items()}


class FaceFiles:
    """A FaceLocator for results written to files: the earliest track's first shot, named
    `<video>.faces/track-<id>.jpg` (relative to the result document), its JPEG collected for
    whoever writes the document."""

    def __init__(self, name: str, parts: list[PartialAnalysis]) -> None:
        self.prefix = f"{name}.faces"
        self.faces = {tid: face for part in parts for tid, face in part.analysis.faces.items()}
        self.images: dict[str, bytes] = {}

    def __call__(self, tracks: list[Track]) -> str:
        for track in sorted(tracks, key=lambda t: t.first_s):
            if track.id in self.faces:
                key = f"{self.prefix}/track-{track.id}.jpg"
                self.images[key] = self.faces[track.id]
                return key
        return ""


def combine(name: str, parts: list[PartialAnalysis], gallery: Gallery,
            options: RecognizeOptions, metadata: MetadataLookup | None,
            face_of: FaceLocator | None = None) -> VideoResult:
    """One result document from the partial analyses of an input's windows (or its whole)."""
    return combine_decided(name, parts, gallery, options, metadata, face_of)[0]


def combine_decided(name: str, parts: list[PartialAnalysis], gallery: Gallery,
                    options: RecognizeOptions, metadata: MetadataLookup | None,
                    face_of: FaceLocator | None = None,
                    ) -> tuple[VideoResult, list[DecidedTrack]]:
    """`combine`, and every face track with the decision made about it (what the face memory
    keeps): decided once, so the memory always agrees with the result."""
    tracks = [t for p in parts for t in p.analysis.tracks]
    summary = summarize(tracks, gallery, options.policy, options.appearance_gap_s, metadata,
                        face_of, presence(options))
    errors = [p.error for p in parts if p.error is not None]
    last_time = max((p.analysis.last_time_s for p in parts), default=0.0)
    stats: dict[str, float] = {
        "frames_decoded": sum(p.analysis.frames_decoded for p in parts),
        "detections": sum(p.analysis.detections_run for p in parts),
        "full_detections": sum(p.analysis.full_detections for p in parts),
        "faces_embedded": sum(p.analysis.shots_taken for p in parts),
        "elapsed_ms": to_ms(sum(p.elapsed_s for p in parts)),
    }
    if errors and not any(p.analysis.frames_decoded for p in parts):
        return VideoResult(video=name, status="error", error=errors[0], stats=stats), []
    return VideoResult(
        video=name,
        status="error" if errors else ("ok" if summary.faces else "no_face"),
        duration_ms=to_ms(max([p.duration_s for p in parts] + [last_time])),
        frames_sampled=sum(p.analysis.frames_sampled for p in parts),
        people=summary.people,
        unknown_faces=summary.unknown_faces,
        strangers=summary.strangers,
        error=errors[0] if errors else None,
        stats=stats,
    ), summary.decided
