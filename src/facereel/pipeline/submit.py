"""An upload becomes the pipeline's first message: the same plain function for the folder
watcher, the HTTP API, an S3 event delivered to a Lambda, and the OpenFaaS monitor."""

from __future__ import annotations

import time
from collections.abc import Callable

from facereel.pipeline.definition import ENTRY
from facereel.pipeline.wiring import Ports
from facereel.ports.metadata import VideoRecord
from facereel.ports.queue import Body

MessageSend = Callable[[str, Body], object]  # (stage, body): how a host hands a message on


def first_message(key: str, etag: str, size: int = 0) -> tuple[str, Body]:
    return ENTRY, {"key": key, "etag": etag, "size": size}


def submit(ports: Ports, key: str, etag: str, size: int = 0,
           send: MessageSend | None = None) -> None:
    """Queue one input object for the pipeline and mark its row `queued`. `send` hands the
    message on another way (a Lambda chain invokes the split function instead)."""
    stage, body = first_message(key, etag, size)
    if send is None:
        ports.queues[stage].send(body)
    else:
        send(stage, body)
    ports.metadata.put_video(VideoRecord(key, etag, "queued", time.time()))


def already_started(ports: Ports, key: str, etag: str) -> bool:
    """Whether this content of `key` was handed to the pipeline before (its row carries the
    same etag, and the message is sent before the row is written): S3 delivers an event at
    least once, and a repeated one should not cost a second analysis. A dead one may start
    again."""
    record = ports.metadata.get_video(key)
    return bool(etag) and record is not None and record.etag == etag \
        and record.status != "dead"
