"""The pipeline's stage functions (their order and wiring is `definition.STAGES`).

Everything a stage touches comes through the context's ports, so the same functions run in
the local worker pool, a Lambda or OpenFaaS handler, or a Ray actor. Queues carry keys, ids
and small documents, never pixels. Outputs are named after the input's key and content hash
(etag) and are deterministic, so a repeated delivery rewrites the same bytes; a message for
content that has since been replaced is dropped (the new content has its own message).

Storage requests per video (a short one, on S3): split reads the upload and writes one part
object (analysis + shots); recognize reads it (unless this process just wrote it) and points
each person's face crop at a shot inside it; publish writes the three output files. The
result document travels to publish inside the message, and every face track's memory to
remember (`pipeline.remember`) inside its own: neither costs a storage request when small.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from facereel.core.recognize import (
    WINDOW_TRACK_STRIDE,
    MediaAnalyzer,
    PartialAnalysis,
    combine_decided,
)
from facereel.core.results import VideoResult, error_result
from facereel.memory.capture import ModelNames, video_memory
from facereel.pipeline.context import StageContext
from facereel.pipeline.parts import (
    FaceCrops,
    LoadedPart,
    ShotCollector,
    dump_part,
    load_part,
    part_key,
    work_prefix,
)
from facereel.pipeline.publishing import publish_result
from facereel.pipeline.remember import (  # noqa: F401 - `remember` is a stage, found by name
    remember,
    remember_body,
)
from facereel.pipeline.windows import Window, plan_windows
from facereel.ports.metadata import VideoRecord
from facereel.ports.objectstore import (
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreError,
    key_problem,
)
from facereel.ports.queue import Body
from facereel.ports.transfers import run_all

log = logging.getLogger(__name__)
Outgoing = list[tuple[str, Body]]
MAX_INLINE_RESULT = 64 * 1024  # larger result documents travel as a stage-1 object


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message as a stage receives it: its body and which delivery this is (1 = first)."""

    body: Body
    attempt: int = 1

    @property
    def redelivered(self) -> bool:
        return self.attempt > 1

    @property
    def key(self) -> str:
        return str(self.body["key"])

    @property
    def etag(self) -> str:
        return str(self.body.get("etag", ""))


@contextmanager
def fetched(store: ObjectStore, key: str) -> Iterator[tuple[Path, ObjectInfo | None]]:
    """A local file with the object's bytes and the object's info (None: gone). A file on
    this machine is used as is; a remote object is downloaded in one request, whose answer
    also says which content (etag) it was."""
    try:
        local = store.local_path(key)
    except ObjectNotFoundError:
        yield Path(key), None
        return
    if local is not None:
        yield local, store.head(key)
        return
    fd, name = tempfile.mkstemp(prefix="facereel-", suffix=Path(key).suffix[:16])
    os.close(fd)
    try:
        try:
            info: ObjectInfo | None = store.download(key, Path(name))
        except ObjectNotFoundError:
            info = None
        yield Path(name), info
    finally:
        Path(name).unlink(missing_ok=True)


def _set_status(ctx: StageContext, delivery: Delivery, status: str) -> None:
    ctx.ports.metadata.put_video(VideoRecord(delivery.key, delivery.etag, status, time.time()))


def _analyze(ctx: StageContext, path: Path, window: Window, number: int,
             delivery: Delivery) -> None:
    """Analyse one window of the input and store it as a part (shots included)."""
    options = replace(ctx.options, budget_s=ctx.pipeline.stage_budget)
    collector = ShotCollector()
    part = MediaAnalyzer(ctx.models, options).analyze(path, window[0], window[1], collector)
    part.video = delivery.key  # a bucket's videos are named by their keys
    data = dump_part(part, delivery.key, delivery.etag, collector)
    ctx.parts.put(part_key(delivery.key, delivery.etag, number), data)


def _stale(info: ObjectInfo | None, delivery: Delivery) -> bool:
    if info is None or (delivery.etag and info.etag != delivery.etag):
        log.info("skipping %s: replaced or deleted since it was queued", delivery.key)
        return True
    return False


def _refused(delivery: Delivery, code: str, message: str) -> Outgoing:
    """Straight to publish with an error record: the input cannot be processed at all."""
    name = delivery.key.rsplit("/", 1)[-1] or delivery.key
    result = error_result(name, code, message)
    return [("publish", {"key": delivery.key, "etag": delivery.etag,
                         "result": result.to_dict()})]


UNREADABLE = ("not_regular_file", "too_large", "timeout")  # a store's refusals of an entry


def split(delivery: Delivery, ctx: StageContext) -> Outgoing:
    key, etag = delivery.key, delivery.etag
    if (problem := key_problem(key)) is not None:
        return _refused(delivery, "invalid_key", f"{key!r}: invalid object key: {problem}")
    try:
        with fetched(ctx.ports.input, key) as (path, info):
            if info is None:  # deleted after it was queued: its row must still end
                return _refused(delivery, "not_found", f"{key}: deleted from the input "
                                "bucket before it was processed")
            if _stale(info, delivery):
                return []
            _set_status(ctx, delivery, "processing")
            windows = plan_windows(path, ctx.pipeline.window)
            if len(windows) == 1:
                _analyze(ctx, path, windows[0], 0, delivery)
                return [("recognize", {"key": key, "etag": etag, "windows": 1})]
    except ObjectStoreError as exc:
        if exc.code not in UNREADABLE:
            raise  # a storage failure: retried later
        return _refused(delivery, exc.code, exc.message)
    return [("analyze", {"key": key, "etag": etag, "window": number, "windows": len(windows),
                         "start": start, "end": end})
            for number, (start, end) in enumerate(windows)]


def analyze(delivery: Delivery, ctx: StageContext) -> Outgoing:
    """One window of a long video; the window that completes the set starts the join."""
    body = delivery.body
    number, total = int(body["window"]), int(body["windows"])
    stored = delivery.redelivered and ctx.ports.stage1.head(
        part_key(delivery.key, delivery.etag, number)) is not None
    if not stored:
        with fetched(ctx.ports.input, delivery.key) as (path, info):
            if info is None:  # deleted: the video can never be joined, its row must end
                return _refused(delivery, "not_found", f"{delivery.key}: deleted from the "
                                "input bucket before it was processed")
            if _stale(info, delivery):
                return []
            end = body.get("end")
            window = (float(body["start"]), float(end) if end is not None else None)
            _analyze(ctx, path, window, number, delivery)
    done, added = ctx.ports.metadata.mark_window(delivery.key, delivery.etag, number)
    # a repeated delivery re-sends the join too: its first run may have died before sending
    if done >= total and (added or delivery.redelivered):
        return [("recognize", {"key": delivery.key, "etag": delivery.etag, "windows": total})]
    return []


def _load_parts(ctx: StageContext, keys: list[str]) -> list[LoadedPart]:
    blobs = run_all(ctx.ports.stage1, [partial(ctx.parts.get, k) for k in keys])
    return [load_part(blob, n * WINDOW_TRACK_STRIDE) for n, blob in enumerate(blobs)]


def recognize(delivery: Delivery, ctx: StageContext) -> Outgoing:
    """Embed the shots of every part, decide who they are: the result document."""
    _set_status(ctx, delivery, "recognizing")
    keys = [part_key(delivery.key, delivery.etag, n)
            for n in range(int(delivery.body.get("windows", 1)))]
    parts = _load_parts(ctx, keys)
    shots = [pair for part in parts for pair in part.shots]
    if shots:
        vectors = ctx.models.embed_shots([shot for _, shot in shots])
        for (track, _), vector in zip(shots, vectors, strict=True):
            track.embeddings.append(vector)
    analyses: list[PartialAnalysis] = [part.part for part in parts]
    crops = FaceCrops.of_parts(parts, keys)
    result, decided = combine_decided(delivery.key, analyses, ctx.gallery, ctx.options,
                                      ctx.metadata, crops)
    outgoing = [("publish", _publish_body(ctx, delivery, result.to_dict()))]
    if ctx.pipeline.remember_faces and decided:  # every face track, known or not
        memory = video_memory(delivery.key, delivery.etag, decided, crops.shots,
                              ctx.options.appearance_gap_s, ModelNames.of(ctx.models))
        outgoing.append(("remember", remember_body(ctx, delivery.key, delivery.etag, memory)))
    return outgoing


def _publish_body(ctx: StageContext, delivery: Delivery, doc: dict[str, Any]) -> Body:
    body: Body = {"key": delivery.key, "etag": delivery.etag}
    text = json.dumps(doc)
    if len(text) <= MAX_INLINE_RESULT:
        return {**body, "result": doc}
    result_key = f"{work_prefix(delivery.key, delivery.etag)}/result.json"
    ctx.ports.stage1.put_bytes(result_key, text.encode(), content_type="application/json")
    return {**body, "result_key": result_key}


def _current(ctx: StageContext, delivery: Delivery) -> bool:
    """Whether the content this message is about is still the input's latest (per the
    video's row, which every new upload updates: no request to the input bucket)."""
    record = ctx.ports.metadata.get_video(delivery.key)
    return record is None or not record.etag or not delivery.etag \
        or record.etag == delivery.etag


def publish(delivery: Delivery, ctx: StageContext) -> Outgoing:
    if not _current(ctx, delivery):
        log.info("not publishing %s: its content changed since", delivery.key)
        return []
    doc = delivery.body.get("result")
    if doc is None:
        doc = json.loads(ctx.ports.stage1.get_bytes(str(delivery.body["result_key"])))
    publish_result(ctx.ports, delivery.key, delivery.etag, VideoResult.from_dict(doc))
    return []
