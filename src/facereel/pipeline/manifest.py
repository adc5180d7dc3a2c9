"""What the split stage hands the recognise stage: the analysis of a video as JSON, and its face
shots as JPEG files, all in the stage-1 bucket under `<video-stem>/<etag>/`.

The manifest is written last, so its presence means the split of that content is complete.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from PIL import Image

from facereel.core.analysis import Analysis
from facereel.core.recognize import PartialAnalysis
from facereel.core.results import ErrorInfo
from facereel.core.shots import FaceShot
from facereel.core.tracking import Observation, Track
from facereel.ports.objectstore import ObjectInfo, ObjectStore, safe_key, stem_of
from facereel.ports.transfers import run_all

JPEG_QUALITY = 95
FORMAT = "facereel-manifest/1"


def work_prefix(key: str, etag: str) -> str:
    """`<video-stem>/<etag>` in the stage-1 bucket: one folder per content of a key."""
    return f"{safe_key(stem_of(key))}/{etag[:16] or 'no-etag'}"


@dataclass(slots=True)
class ShotStoreSink:
    """A ShotSink that writes each shot as a JPEG into the stage-1 bucket, all at once (and in
    parallel for a remote bucket) when the analysis flushes it."""

    store: ObjectStore
    prefix: str
    shots: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # track id -> shots
    _pending: list[Callable[[], ObjectInfo]] = field(default_factory=list)

    def add(self, track: Track, shot: FaceShot) -> None:
        number = len(self.shots.setdefault(track.id, []))
        key = f"{self.prefix}/track{track.id:03d}-shot{number:02d}.jpg"
        buffer = io.BytesIO()
        Image.fromarray(shot.image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
        self._pending.append(partial(self.store.put_bytes, key, buffer.getvalue(), None,
                                     "image/jpeg"))
        self.shots[track.id].append({"key": key, "time_s": shot.time_s, "box": list(shot.box),
                                     "face": list(shot.face)})

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        run_all(self.store, pending)


def dump_manifest(part: PartialAnalysis, key: str, etag: str,
                  shots: dict[int, list[dict[str, Any]]]) -> bytes:
    analysis = part.analysis
    doc = {
        "format": FORMAT,
        "key": key,
        "etag": etag,
        "video": part.video,
        "duration_s": part.duration_s,
        "elapsed_s": part.elapsed_s,
        "error": {"code": part.error.code, "message": part.error.message} if part.error else None,
        "stats": {"frames_decoded": analysis.frames_decoded,
                  "frames_sampled": analysis.frames_sampled,
                  "full_detections": analysis.full_detections,
                  "detections_run": analysis.detections_run,
                  "shots_taken": analysis.shots_taken,
                  "last_time_s": analysis.last_time_s},
        "tracks": [_track_doc(t, shots.get(t.id, [])) for t in analysis.tracks],
    }
    return json.dumps(doc).encode("utf-8")


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
class LoadedManifest:
    part: PartialAnalysis
    shots: list[tuple[Track, FaceShot]]
    shot_keys: dict[int, list[str]]  # track id -> its shots' keys in the stage-1 bucket

    def first_shot(self, tracks: list[Track]) -> str:
        """The stage-1 key of a face crop of these tracks (their first shot)."""
        for track in tracks:
            if self.shot_keys.get(track.id):
                return self.shot_keys[track.id][0]
        return ""


def load_manifest(data: bytes, store: ObjectStore) -> LoadedManifest:
    """The partial analysis a manifest describes, with its shots fetched from `store`."""
    doc = json.loads(data)
    stats = doc["stats"]
    analysis = Analysis(frames_decoded=stats["frames_decoded"],
                        frames_sampled=stats["frames_sampled"],
                        full_detections=stats["full_detections"],
                        detections_run=stats["detections_run"],
                        shots_taken=stats["shots_taken"],
                        last_time_s=stats["last_time_s"])
    wanted: list[tuple[Track, dict[str, Any]]] = []
    for item in doc["tracks"]:
        track = Track(
            id=item["id"],
            observations=[Observation(t, (b[0], b[1], b[2], b[3]), s)
                          for t, b, s in item["observations"]],
            spans=[(a, b) for a, b in item["spans"]],
            first_s=item["first_s"],
            last_s=item["last_s"],
            shot_times=[s["time_s"] for s in item["shots"]],
        )
        analysis.tracks.append(track)
        wanted += [(track, s) for s in item["shots"]]
    images = run_all(store, [partial(_load_shot, item, store) for _, item in wanted])
    shots = [(track, image) for (track, _), image in zip(wanted, images, strict=True)]
    error = ErrorInfo(**doc["error"]) if doc.get("error") else None
    part = PartialAnalysis(doc["video"], analysis, doc["duration_s"], doc["elapsed_s"], error)
    keys = {item["id"]: [s["key"] for s in item["shots"]] for item in doc["tracks"]}
    return LoadedManifest(part, shots, keys)


def _load_shot(item: dict[str, Any], store: ObjectStore) -> FaceShot:
    with Image.open(io.BytesIO(store.get_bytes(item["key"]))) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    box, face = item["box"], item["face"]
    return FaceShot(item["time_s"], (box[0], box[1], box[2], box[3]), rgb,
                    (face[0], face[1], face[2], face[3]))
