"""What the analysis of a video (or of one window of it) hands the recognize stage: one object
in the stage-1 bucket, `<video-stem>/<etag>/part-<window>.zip`, holding the analysis as JSON
(`part.json`: tracks, observations, spans, stats) and the face shots as JPEG files.

One object per part, not one per shot: on S3 every object is a request each way, and the
shots of a video are always needed together. The zip is stored uncompressed (JPEGs do not
shrink) and read with bounds: a part is produced by facereel, but it crosses a bucket.
"""

from __future__ import annotations

import io
import json
import re
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from facereel.core.analysis import Analysis
from facereel.core.recognize import PartialAnalysis
from facereel.core.results import ErrorInfo
from facereel.core.shots import FaceShot
from facereel.core.tracking import Observation, Track
from facereel.errors import FacereelError
from facereel.ports.objectstore import ObjectStore, safe_key, stem_of

JPEG_QUALITY = 95
FORMAT = "facereel-part/1"
MAX_PART_BYTES = 512 << 20
MAX_PART_JSON_BYTES = 64 << 20


def work_prefix(key: str, etag: str) -> str:
    """`<video-stem>/<etag>` in the stage-1 bucket: one folder per content of a key."""
    return f"{safe_key(stem_of(key))}/{etag[:16] or 'no-etag'}"


def part_key(key: str, etag: str, window: int) -> str:
    return f"{work_prefix(key, etag)}/part-{window:04d}.zip"


def shot_name(track: int, number: int) -> str:
    return f"track{track:03d}-shot{number:02d}.jpg"


@dataclass(slots=True)
class ShotCollector:
    """A ShotSink keeping each shot as JPEG bytes until the part is written."""

    shots: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # track -> shot docs
    images: dict[str, bytes] = field(default_factory=dict)  # shot name -> JPEG

    def add(self, track: Track, shot: FaceShot) -> None:
        number = len(self.shots.setdefault(track.id, []))
        name = shot_name(track.id, number)
        buffer = io.BytesIO()
        Image.fromarray(shot.image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
        self.images[name] = buffer.getvalue()
        self.shots[track.id].append({"name": name, "time_s": shot.time_s, "box": list(shot.box),
                                     "face": list(shot.face), "mirror": shot.mirror})

    def flush(self) -> None:
        """Nothing to do: the shots travel with the part."""


class PartStore:
    """Parts go through the stage-1 bucket; the last few this process wrote are also kept in
    memory, so when the same process runs the next stage (a worker often takes its own
    `recognize` message next) the part is not read back. Parts are named after the input's
    content hash and are deterministic, so the kept bytes are the stored bytes."""

    def __init__(self, store: ObjectStore, keep: int = 8) -> None:
        self.store = store
        self.keep = keep
        self._recent: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        self.store.put_bytes(key, data, content_type="application/zip")
        with self._lock:
            self._recent[key] = data
            while len(self._recent) > self.keep:
                self._recent.popitem(last=False)

    def get(self, key: str) -> bytes:
        with self._lock:
            kept = self._recent.pop(key, None)  # read once: the next stage consumes it
        return kept if kept is not None else self.store.get_bytes(key)


def dump_part(part: PartialAnalysis, key: str, etag: str, collector: ShotCollector) -> bytes:
    analysis = part.analysis
    doc = {
        "format": FORMAT, "key": key, "etag": etag, "video": part.video,
        "duration_s": part.duration_s, "elapsed_s": part.elapsed_s,
        "error": {"code": part.error.code, "message": part.error.message} if part.error else None,
        "stats": {"frames_decoded": analysis.frames_decoded,
                  "frames_sampled": analysis.frames_sampled,
                  "full_detections": analysis.full_detections,
                  "detections_run": analysis.detections_run,
                  "shots_taken": analysis.shots_taken,
                  "last_time_s": analysis.last_time_s},
        "tracks": [_track_doc(t, collector.shots.get(t.id, [])) for t in analysis.tracks],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("part.json", json.dumps(doc))
        for name, data in sorted(collector.images.items()):
            archive.writestr(name, data)
    return buffer.getvalue()


def _track_doc(track: Track, shots: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": track.id,
        "observations": [[o.time_s, list(o.box), o.score] for o in track.observations],
        "spans": [list(s) for s in track.spans],
        "first_s": track.first_s,
        "last_s": track.last_s,
        "shots": shots,
    }


@dataclass(slots=True)
class LoadedPart:
    part: PartialAnalysis
    shots: list[tuple[Track, FaceShot]]
    faces: dict[int, list[tuple[float, str]]]  # track id -> (time, member) of each shot


def face_key(part: str, member: str) -> str:
    """Where a result's face crop is: a shot inside a part object (`.../part-0000.zip/
    track000-shot00.jpg`). No object of its own: the crop costs no request to publish."""
    return f"{part}/{member}"


class FaceCrops:
    """Which face crop each person's result points to: the first shot of their earliest
    track (`shots`: track id -> (time, crop key) of each kept shot). A track that
    identification split in two keeps its id, so the shot is found by its time."""

    def __init__(self, shots: dict[int, list[tuple[float, str]]]) -> None:
        self.shots = shots

    @classmethod
    def of_parts(cls, parts: list[LoadedPart], part_keys: list[str]) -> FaceCrops:
        """The shots inside the part objects that carry them (nothing more is written)."""
        return cls({tid: [(at, face_key(key, member)) for at, member in shots]
                    for part, key in zip(parts, part_keys, strict=True)
                    for tid, shots in part.faces.items()})

    def __call__(self, tracks: list[Track]) -> str:
        for track in sorted(tracks, key=lambda t: t.first_s):
            for at, key in self.shots.get(track.id, []):
                if not track.shot_times or at in track.shot_times:
                    return key
        return ""


def split_face_key(key: str) -> tuple[str, str] | None:
    """(part object, member) of a face key; None when `key` is not one."""
    part, sep, member = key.rpartition(".zip/")
    if not sep or "/" in member or not re.fullmatch(r"track\d{3}-shot\d{2}\.jpg", member):
        return None
    return f"{part}.zip", member


def read_member(data: bytes, member: str) -> bytes:
    """One shot of a part object (for the face crops results point to)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.read(member)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise FacereelError(f"no face crop {member} in the part", "not_found") from exc


def load_part(data: bytes, first_track_id: int = 0) -> LoadedPart:
    """A part's analysis with its shots decoded. Track ids are renumbered from
    `first_track_id`, so the tracks of a video's windows stay distinct when joined."""
    if len(data) > MAX_PART_BYTES:
        raise FacereelError(f"analysis part of {len(data)} bytes is too large", "bad_part")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo("part.json")
            if info.file_size > MAX_PART_JSON_BYTES:
                raise FacereelError("analysis part description is too large", "bad_part")
            doc = json.loads(archive.read("part.json"))
            if doc.get("format") != FORMAT:
                raise FacereelError(f"not an analysis part ({doc.get('format')!r})", "bad_part")
            return _loaded(doc, archive, first_track_id)
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise FacereelError(f"unreadable analysis part ({exc})", "bad_part") from exc


def _loaded(doc: dict[str, Any], archive: zipfile.ZipFile, first_id: int) -> LoadedPart:
    stats = doc["stats"]
    analysis = Analysis(frames_decoded=stats["frames_decoded"],
                        frames_sampled=stats["frames_sampled"],
                        full_detections=stats["full_detections"],
                        detections_run=stats["detections_run"],
                        shots_taken=stats["shots_taken"], last_time_s=stats["last_time_s"])
    shots: list[tuple[Track, FaceShot]] = []
    faces: dict[int, list[tuple[float, str]]] = {}
    for item in doc["tracks"]:
        track = Track(id=first_id + int(item["id"]),
                      observations=[Observation(t, (b[0], b[1], b[2], b[3]), s)
                                    for t, b, s in item["observations"]],
                      spans=[(a, b) for a, b in item["spans"]], first_s=item["first_s"],
                      last_s=item["last_s"], shot_times=[s["time_s"] for s in item["shots"]])
        analysis.tracks.append(track)
        for shot in item["shots"]:
            jpeg = archive.read(str(shot["name"]))
            faces.setdefault(track.id, []).append((float(shot["time_s"]), str(shot["name"])))
            shots.append((track, _shot(shot, jpeg)))
    error = ErrorInfo(**doc["error"]) if doc.get("error") else None
    part = PartialAnalysis(doc["video"], analysis, doc["duration_s"], doc["elapsed_s"], error)
    return LoadedPart(part, shots, faces)


def _shot(item: dict[str, Any], jpeg: bytes) -> FaceShot:
    with Image.open(io.BytesIO(jpeg)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    box, face = item["box"], item["face"]
    # parts written before shots could be mirrored have no "mirror": embedded as they were
    return FaceShot(item["time_s"], (box[0], box[1], box[2], box[3]), rgb,
                    (face[0], face[1], face[2], face[3]), bool(item.get("mirror", False)))
