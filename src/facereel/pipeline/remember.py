"""The `remember` stage: keep every face track of a recognized video in the face memory.

`recognize` hands over the video's memory record (`ports.memory.VideoMemory`: each decided
track's shot embeddings, crops, spans and match) inside the message, or, when its document
is over `MAX_INLINE_MEMORY` (SQS takes 256 KB), as a stage-1 object beside the video's parts
(`<stem>/<etag>/memory.json`). Remembering the same content twice adds nothing (the store
keys a record by video and etag), and content replaced since it was queued is not
remembered (the video's metadata row, which every upload updates, says which is current).

    {"key": "clip.mp4", "etag": "9b2c...", "memory": {"format": "facereel-memory/1", ...}}
    {"key": "clip.mp4", "etag": "9b2c...", "memory_key": "clip/9b2c.../memory.json"}
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from facereel.pipeline.parts import work_prefix
from facereel.ports.memory import FaceMemoryError, VideoMemory
from facereel.ports.queue import Body

if TYPE_CHECKING:
    from facereel.pipeline.context import StageContext
    from facereel.pipeline.stages import Delivery, Outgoing

log = logging.getLogger(__name__)
MAX_INLINE_MEMORY = 64 * 1024
MAX_MEMORY_OBJECT = 256 << 20  # a stage-1 memory document read back, at most


def remember_body(ctx: StageContext, key: str, etag: str, memory: VideoMemory) -> Body:
    """The `remember` message for a video's memory record (inline when small)."""
    doc = memory.to_doc()
    text = json.dumps(doc)
    if len(text) <= MAX_INLINE_MEMORY:
        return {"key": key, "etag": etag, "memory": doc}
    memory_key = f"{work_prefix(key, etag)}/memory.json"
    ctx.ports.stage1.put_bytes(memory_key, text.encode(), content_type="application/json")
    return {"key": key, "etag": etag, "memory_key": memory_key}


def remember(delivery: Delivery, ctx: StageContext) -> Outgoing:
    record = ctx.ports.metadata.get_video(delivery.key)
    if record is not None and record.etag and delivery.etag and record.etag != delivery.etag:
        log.info("not remembering %s: its content changed since", delivery.key)
        return []
    memory = VideoMemory.from_doc(_document(ctx, delivery.body))
    if memory.video != delivery.key or memory.etag != delivery.etag:
        raise FaceMemoryError(f"a memory record of {memory.video!r} sent for "
                              f"{delivery.key!r}", "bad_memory")
    memory.written = time.time()  # retention counts from here
    if not ctx.ports.memory.remember(memory):
        log.info("%s: this content is remembered already", delivery.key)
    return []


def _document(ctx: StageContext, body: Body) -> Any:
    if "memory" in body:
        return body["memory"]
    data = ctx.ports.stage1.get_bytes(str(body["memory_key"]))
    if len(data) > MAX_MEMORY_OBJECT:
        raise FaceMemoryError(f"memory document of {len(data)} bytes is too large",
                              "bad_memory")
    return json.loads(data)
