"""What a batch worker does with an input, whichever engine runs it (a local pool's process,
a Ray actor): open it where it lives, cut it into the pipeline's windows, analyse a window;
and, once every window is in, decide who it shows (`core.recognize.combine`).

Windows are planned by the worker that opened the input (a remote object is only downloaded
by a worker), and are the pipeline's fixed-length windows (`pipeline.windows`), so the answer
never depends on how many workers there are or which ran what.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from facereel.app.sources import BucketStores, InputItem, opened
from facereel.config import Settings
from facereel.config.sections import StorageSettings
from facereel.core.gallery import Gallery
from facereel.core.people import DecidedTrack, MetadataLookup
from facereel.core.recognize import (
    FaceFiles,
    MediaAnalyzer,
    PartialAnalysis,
    RecognizeOptions,
    combine_decided,
    number_windows,
)
from facereel.core.results import ErrorInfo, VideoResult
from facereel.errors import FacereelError
from facereel.pipeline.windows import WHOLE, Window, plan_windows

PLAN = None  # a WindowWork's window when the worker plans the windows (and takes the first)


@dataclass(frozen=True, slots=True)
class WindowWork:
    """One window of an input to analyse; `window` PLAN: open the input, plan its windows and
    analyse the first one."""

    item: InputItem
    number: int = 0
    window: Window | None = PLAN


@dataclass(slots=True)
class Analyzed:
    item: InputItem
    number: int
    part: PartialAnalysis
    windows: list[Window] = field(default_factory=list)  # the plan, when this work made it


def failed_part(item: InputItem, code: str, message: str) -> PartialAnalysis:
    """The partial analysis of a window that could not be analysed (its worker crashed...)."""
    return PartialAnalysis(item.video, error=ErrorInfo(code, f"{item.video}: {message}"))


class ItemAnalyzer:
    """Face models loaded once, and the buckets inputs are read from."""

    def __init__(self, analyzer: MediaAnalyzer, window_s: float,
                 storage: StorageSettings) -> None:
        self.analyzer = analyzer
        self.window_s = window_s
        self.stores = BucketStores(storage)

    @classmethod
    def load(cls, settings: Settings, keep_faces: bool = False) -> ItemAnalyzer:
        """Models loaded from the settings' recognition section."""
        from facereel.core.faces import FaceModels

        recognition = settings.recognition
        options = replace(recognition.recognize_options(), keep_faces=keep_faces)
        return cls(MediaAnalyzer(FaceModels(recognition.face_config()).load(), options),
                   settings.pipeline.window, settings.storage)

    def analyze(self, work: WindowWork) -> Analyzed:
        try:
            with opened(work.item, self.stores) as path:
                windows = plan_windows(path, self.window_s) if work.window is PLAN else []
                start, end = windows[0] if work.window is None else work.window
                part = self.analyzer.analyze(path, start, end)
        except FacereelError as exc:  # unreadable where it lives: one error record
            part = failed_part(work.item, exc.code, exc.message)
            return Analyzed(work.item, work.number, part,
                            list(WHOLE) if work.window is PLAN else [])
        part.video = work.item.video
        return Analyzed(work.item, work.number, part, windows)

    def analyze_all(self, item: InputItem) -> list[PartialAnalysis]:
        """Every window of the input, here (one download of a remote object)."""
        try:
            with opened(item, self.stores) as path:
                parts = [self.analyzer.analyze(path, start, end)
                         for start, end in plan_windows(path, self.window_s)]
        except FacereelError as exc:
            return [failed_part(item, exc.code, exc.message)]
        for part in parts:
            part.video = item.video
        return parts


@dataclass(frozen=True)
class Judge:
    """Decides who an input shows from its windows: the gallery, people's metadata and the
    options of one run, read once (a cluster's workers need no access to where they came
    from, and every result of the run is judged against the same gallery)."""

    gallery: Gallery
    options: RecognizeOptions
    people: dict[str, dict[str, Any]] | None  # name -> metadata fields; None: no store

    def lookup(self, name: str) -> dict[str, Any] | None:
        return None if self.people is None else self.people.get(name)

    def result(self, item: InputItem, parts: list[PartialAnalysis],
               faces: bool = False) -> VideoResult:
        return join_windows(item.video, parts, self.gallery, self.options,
                            self.lookup if self.people is not None else None, faces)


def join_windows(video: str, parts: list[PartialAnalysis], gallery: Gallery,
                 options: RecognizeOptions, lookup: MetadataLookup | None,
                 faces: bool = False) -> VideoResult:
    """The result of an input from its windows' analyses (in window order): track ids made
    distinct as the pipeline numbers them (so a stranger's `track_id` is the same whichever
    engine ran it); with `faces`, crops named relative to the document, carried along."""
    return join_decided(video, parts, gallery, options, lookup, faces)[0]


def join_decided(video: str, parts: list[PartialAnalysis], gallery: Gallery,
                 options: RecognizeOptions, lookup: MetadataLookup | None,
                 faces: bool = False) -> tuple[VideoResult, list[DecidedTrack]]:
    """`join_windows`, and every face track with the decision made about it (what the face
    memory keeps: decided once, so the memory always agrees with the result)."""
    number_windows(parts)
    locator = FaceFiles(video, parts) if faces else None
    result, decided = combine_decided(video, parts, gallery, options, lookup, locator)
    if locator is not None:
        result.face_images = locator.images
    return result, decided


def judge_of(settings: Settings) -> Judge:
    """The run's judge, from the configured gallery and metadata store."""
    from facereel.app.recognition import metadata_lookup, open_gallery

    gallery = open_gallery(settings)
    lookup = metadata_lookup(settings)
    people = None if lookup is None else {
        name: fields for name in gallery.people if (fields := lookup(name)) is not None}
    return Judge(gallery, settings.recognition.recognize_options(), people)

