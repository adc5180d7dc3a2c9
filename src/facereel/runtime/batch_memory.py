"""`facereel recognize` with a data directory remembers, as the pipeline does: each input's
shots are stored as parts in the stage-1 bucket (their crops are what `memory reembed` and
`/v1/faces` read), and every decided face track goes into the face memory under the input's
absolute path and content hash (MD5, as S3 gives it). Workers write the parts; the parent,
which joins the windows and decides who is who, writes the memory."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from facereel.config import Settings
from facereel.config.sections import StorageSettings
from facereel.core.faces import FaceModels
from facereel.core.people import DecidedTrack
from facereel.core.recognize import WINDOW_TRACK_STRIDE, PartialAnalysis
from facereel.core.shots import FaceShot, ShotSink
from facereel.core.tracking import Track
from facereel.memory.capture import ModelNames, video_memory
from facereel.pipeline.parts import ShotCollector, dump_part, face_key, part_key
from facereel.pipeline.wiring import memory_store, object_store
from facereel.runtime.batch_worker import Crops

HASH_CHUNK = 1 << 20


class TeeSink:
    """A ShotSink passing every shot to several sinks (embed here, and keep for the part)."""

    def __init__(self, *sinks: ShotSink) -> None:
        self.sinks = sinks

    def add(self, track: Track, shot: FaceShot) -> None:
        for sink in self.sinks:
            sink.add(track, shot)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()


def input_identity(path: Path) -> tuple[str, str]:
    """(key, etag) of a local input: its absolute path and the MD5 of its bytes; ("", "")
    for what cannot be read as a regular file (a pipe, a device, a read error): such an
    input ends as its error record, and nothing of it is remembered."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        if not stat.S_ISREG(Path(path).stat().st_mode):
            return "", ""
        with Path(path).open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    except OSError:
        return "", ""
    return os.path.abspath(path), digest.hexdigest()  # noqa: PTH100 - keep links as given


def store_part(storage: StorageSettings, part: PartialAnalysis, key: str, etag: str,
               window: int, collector: ShotCollector) -> Crops:
    """Write a window's part (analysis and shots) to the stage-1 bucket; its tracks' crops.
    Track ids are numbered as the joined video numbers them."""
    where = part_key(key, etag, window)
    object_store(storage, storage.stage1).put_bytes(
        where, dump_part(part, key, etag, collector), content_type="application/zip")
    offset = window * WINDOW_TRACK_STRIDE
    return {tid + offset: [(float(s["time_s"]), face_key(where, str(s["name"]))) for s in shots]
            for tid, shots in collector.shots.items()}


class BatchMemory:
    """The parent's side: remembers each joined input."""

    def __init__(self, settings: Settings) -> None:
        self.store = memory_store(settings.storage)
        self.models = ModelNames.of(FaceModels(settings.recognition.face_config()))
        self.gap_s = settings.recognition.appearance_gap

    def remember(self, key: str, etag: str, decided: Sequence[DecidedTrack],
                 crops: Mapping[int, Sequence[tuple[float, str]]]) -> None:
        if decided:
            self.store.remember(video_memory(key, etag, decided, crops, self.gap_s,
                                             self.models, time.time()))
