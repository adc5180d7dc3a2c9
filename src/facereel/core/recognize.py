"""Who is in this video or image: the core's one entry point for a single input.

`Recognizer.recognize(path)` never raises for a bad input: it returns an `error` result with a
code and a message, so a broken file in a batch costs one record and nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from facereel.core.analysis import Analysis, Analyzer
from facereel.core.faces import FaceModels
from facereel.core.gallery import Gallery
from facereel.core.match import MatchPolicy, decide, settled
from facereel.core.media import DEFAULT_MAX_PIXELS, Picture, VideoSource, load_image
from facereel.core.people import MetadataLookup, summarize, to_ms
from facereel.core.results import ErrorInfo, VideoResult, error_result
from facereel.core.sampling import SamplingPlan
from facereel.core.sniff import classify
from facereel.core.tracking import Track
from facereel.errors import FacereelError, GalleryError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecognizeOptions:
    sampling: SamplingPlan = field(default_factory=SamplingPlan)
    policy: MatchPolicy = field(default_factory=MatchPolicy)
    appearance_gap_s: float = 1.0  # unseen for longer than this = a separate appearance
    max_pixels: int = DEFAULT_MAX_PIXELS
    decode_threads: int = 1


class Recognizer:
    """Loaded face models + a gallery + options; reusable across many inputs."""

    def __init__(self, models: FaceModels, gallery: Gallery,
                 options: RecognizeOptions | None = None,
                 metadata: MetadataLookup | None = None) -> None:
        if gallery.embedder != models.embedder_id:
            raise GalleryError(
                f"the gallery holds '{gallery.embedder}' vectors but the configured embedder is "
                f"'{models.embedder_id}'",
                "embedder_mismatch",
            )
        self.models = models
        self.gallery = gallery
        self.options = options or RecognizeOptions()
        self.metadata = metadata

    def recognize(self, path: Path) -> VideoResult:
        path = Path(path)
        started = time.perf_counter()
        try:
            kind = classify(path)
            if kind == "image":
                picture = load_image(path, path.name, self.options.max_pixels)
                result = self._from_pictures(path.name, [picture], 0.0, still=True)
            else:
                result = self._video(path)
        except FacereelError as exc:
            return error_result(path.name, exc.code, exc.message)
        except MemoryError:
            return error_result(path.name, "too_large", f"{path.name}: ran out of memory")
        except Exception as exc:  # a bug must not sink the batch; log it with its traceback
            log.exception("unexpected failure on %s", path)
            return error_result(path.name, "internal_error", f"{path.name}: {exc!r}")
        result.stats["elapsed_ms"] = to_ms(time.perf_counter() - started)
        return result

    def recognize_image_bytes(self, data: bytes, name: str) -> VideoResult:
        try:
            picture = load_image(data, name, self.options.max_pixels)
            return self._from_pictures(name, [picture], 0.0, still=True)
        except FacereelError as exc:
            return error_result(name, exc.code, exc.message)

    def _video(self, path: Path) -> VideoResult:
        options = self.options
        threads, limit = options.decode_threads, options.max_pixels
        with VideoSource(path, threads=threads, max_pixels=limit) as video:
            pictures = video.pictures(options.sampling.decode_mode)
            result = self._from_pictures(path.name, pictures, video.info.duration_s, still=False)
            try:
                video.check_complete()
            except FacereelError as exc:
                # keep what the decodable part showed, but say plainly the input is damaged
                result.status, result.error = "error", ErrorInfo(exc.code, exc.message)
            return result

    def _from_pictures(self, name: str, pictures: Iterable[Picture], duration_s: float, *,
                       still: bool) -> VideoResult:
        plan = self.options.sampling if not still else SamplingPlan("first")
        analyzer = Analyzer(self.models, plan, self._wants_embedding,
                            self.options.appearance_gap_s, self.options.policy.min_face_score)
        analysis = analyzer.run(pictures)
        return self._result(name, analysis, duration_s)

    def _wants_embedding(self, track: Track, now: float) -> bool:
        policy = self.options.policy
        last = track.embed_times[-1] if track.embed_times else None
        if last is None:
            return True
        if settled(decide(self.gallery, track.embeddings, policy), policy):
            return now - last >= policy.reverify_s
        return True

    def _result(self, name: str, analysis: Analysis, duration_s: float) -> VideoResult:
        summary = summarize(analysis.tracks, self.gallery, self.options.policy,
                            self.options.appearance_gap_s, self.metadata)
        return VideoResult(
            video=name,
            status="ok" if summary.faces else "no_face",
            duration_ms=to_ms(max(duration_s, analysis.last_time_s)),
            frames_sampled=analysis.frames_sampled,
            people=summary.people,
            unknown_faces=summary.unknown_faces,
            stats={
                "frames_decoded": analysis.frames_decoded,
                "detections": analysis.detections_run,
                "full_detections": analysis.full_detections,
                "faces_embedded": analysis.faces_embedded,
            },
        )


