"""The pipeline's stages: plain functions `(message body, context) -> [(next stage, body)]`.

The same functions run in the local worker pool, and can run in a Lambda or OpenFaaS handler or
as a cluster task: everything they touch comes through the context's ports. Queues carry keys
and ids only. Every stage is idempotent: its outputs are named after the input's key and
content hash (etag), and a stage whose output already exists just passes the work on, so a
message delivered twice (after a crash, say) never duplicates outputs or counts.

    split      input video -> face shots (JPEG) + manifest in stage-1 under <stem>/<etag>/
    recognise  manifest + shots -> result document (stage-1 <stem>/<etag>/result.json)
    publish    result -> output bucket <stem>.json/.txt/.csv + the video's metadata row
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facereel.app.recognition import MetadataLookup, open_gallery
from facereel.config import Settings
from facereel.core.faces import FaceModels
from facereel.core.gallery import Gallery
from facereel.core.recognize import MediaAnalyzer, PartialAnalysis, Recognizer, combine
from facereel.core.results import ErrorInfo, VideoResult
from facereel.pipeline.manifest import ShotStoreSink, dump_manifest, load_manifest, work_prefix
from facereel.pipeline.publishing import publish_result
from facereel.pipeline.wiring import Ports
from facereel.ports.metadata import VideoRecord
from facereel.ports.objectstore import (
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
    key_problem,
)
from facereel.ports.objectstore.local import LocalObjectStore
from facereel.ports.queue import Body

log = logging.getLogger(__name__)
Outgoing = list[tuple[str, Body]]


class StageContext:
    """What stages need, built lazily once per process: ports, models, gallery, settings."""

    def __init__(self, settings: Settings, ports: Ports) -> None:
        self.settings = settings
        self.ports = ports
        self._models: FaceModels | None = None
        self._gallery: tuple[float, Gallery] | None = None
        self._recognizer: Recognizer | None = None

    @property
    def models(self) -> FaceModels:
        if self._models is None:
            self._models = FaceModels(self.settings.face_config()).load()
        return self._models

    @property
    def gallery(self) -> Gallery:
        """The gallery, reloaded when its file changes (people enrolled while running)."""
        path = self.settings.gallery_path
        stamp = path.stat().st_mtime if path.exists() else 0.0
        if self._gallery is None or self._gallery[0] != stamp:
            gallery = open_gallery(self.settings, create=True)
            self._gallery = (stamp, gallery)
        return self._gallery[1]

    def recognizer(self) -> Recognizer:
        """A recognizer over the current gallery (rebuilt when the gallery changes)."""
        gallery = self.gallery
        if self._recognizer is None or self._recognizer.gallery is not gallery:
            self._recognizer = Recognizer(self.models, gallery, self.settings.recognize_options(),
                                          MetadataLookup(self.ports.metadata))
        return self._recognizer


@contextmanager
def fetched(store: ObjectStore, key: str) -> Iterator[tuple[Path, ObjectInfo | None]]:
    """A local file with the object's bytes and the object's info (None: gone). A local
    bucket's own file is used as is; a remote object is downloaded in one request, whose
    answer also says which content (etag) it was."""
    if isinstance(store, LocalObjectStore):
        yield store.local_path(key), store.head(key)
        return
    suffix = Path(key).suffix[:16]
    fd, name = tempfile.mkstemp(prefix="facereel-", suffix=suffix)
    os.close(fd)
    try:
        try:
            info: ObjectInfo | None = store.download(key, Path(name))
        except ObjectNotFoundError:
            info = None
        yield Path(name), info
    finally:
        Path(name).unlink(missing_ok=True)


def redelivered(body: Body) -> bool:
    """Whether a message may have been processed before (unknown counts as yes): only then
    is it worth asking the store whether a stage's output already exists."""
    return int(body.get("_attempt", 2)) > 1


def _current(ports: Ports, key: str, etag: str) -> bool | None:
    """Whether `etag` is still the input's content: None when the object is gone."""
    if key_problem(key) is not None:
        return True  # an invalid key is never stored; its message carries the whole story
    info = ports.input.head(key)
    if info is None:
        return None
    return not etag or info.etag == etag


def _set_status(ports: Ports, key: str, etag: str, status: str) -> None:
    ports.metadata.put_video(VideoRecord(key, etag, status, time.time()))


def split(body: Body, ctx: StageContext) -> Outgoing:
    key, etag = str(body["key"]), str(body.get("etag", ""))
    manifest = f"{work_prefix(key, etag)}/manifest.json"
    onward: Outgoing = [("recognise", {"key": key, "etag": etag, "manifest": manifest})]
    if redelivered(body) and ctx.ports.stage1.head(manifest) is not None:
        return onward  # already split: a repeated delivery
    problem = key_problem(key)
    if problem is not None:
        part = PartialAnalysis(key, error=ErrorInfo(
            "invalid_key", f"{key!r}: invalid object key: {problem}"))
        ctx.ports.stage1.put_bytes(manifest, dump_manifest(part, key, etag, {}))
        return onward
    sink = ShotStoreSink(ctx.ports.stage1, work_prefix(key, etag))
    analyzer = MediaAnalyzer(ctx.models, ctx.settings.recognize_options())
    with fetched(ctx.ports.input, key) as (path, info):
        if info is None or (etag and info.etag != etag):
            log.info("skipping %s: replaced or deleted since it was queued", key)
            return []
        _set_status(ctx.ports, key, etag, "processing")
        part = analyzer.analyze(path, sink=sink)
    part.video = key  # a bucket's videos are named by their keys
    ctx.ports.stage1.put_bytes(manifest, dump_manifest(part, key, etag, sink.shots))
    return onward


def recognise(body: Body, ctx: StageContext) -> Outgoing:
    key, etag = str(body["key"]), str(body.get("etag", ""))
    result_key = f"{work_prefix(key, etag)}/result.json"
    onward: Outgoing = [("publish", {"key": key, "etag": etag, "result": result_key})]
    if redelivered(body) and ctx.ports.stage1.head(result_key) is not None:
        return onward
    _set_status(ctx.ports, key, etag, "recognising")
    loaded = load_manifest(ctx.ports.stage1.get_bytes(str(body["manifest"])), ctx.ports.stage1)
    if loaded.shots:
        vectors = ctx.models.embed_shots([shot for _, shot in loaded.shots])
        for (track, _), vector in zip(loaded.shots, vectors, strict=True):
            track.embeddings.append(vector)
    lookup = MetadataLookup(ctx.ports.metadata)
    result = combine(loaded.part.video, [loaded.part], ctx.gallery,
                     ctx.settings.recognize_options(), lookup, loaded.first_shot)
    ctx.ports.stage1.put_bytes(result_key, json.dumps(result.to_dict()).encode("utf-8"),
                               content_type="application/json")
    return onward


def publish(body: Body, ctx: StageContext) -> Outgoing:
    key, etag = str(body["key"]), str(body.get("etag", ""))
    if _current(ctx.ports, key, etag) is False:
        log.info("not publishing %s: its content changed since", key)
        return []
    doc: dict[str, Any] = json.loads(ctx.ports.stage1.get_bytes(str(body["result"])))
    publish_result(ctx.ports, key, etag, VideoResult.from_dict(doc))
    return []


STAGE_FUNCTIONS: dict[str, Callable[[Body, StageContext], Outgoing]] = {
    "split": split,
    "recognise": recognise,
    "publish": publish,
}
