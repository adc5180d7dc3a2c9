"""An upload becomes the pipeline's first message: the same plain function for the folder
watcher, the HTTP API, an S3 event delivered to a Lambda, and the OpenFaaS monitor."""

from __future__ import annotations

import time

from facereel.pipeline.definition import ENTRY
from facereel.pipeline.wiring import Ports
from facereel.ports.metadata import VideoRecord
from facereel.ports.queue import Body


def first_message(key: str, etag: str, size: int = 0) -> tuple[str, Body]:
    return ENTRY, {"key": key, "etag": etag, "size": size}


def submit(ports: Ports, key: str, etag: str, size: int = 0) -> None:
    """Queue one input object for the pipeline and mark its row `queued`."""
    stage, body = first_message(key, etag, size)
    ports.queues[stage].send(body)
    ports.metadata.put_video(VideoRecord(key, etag, "queued", time.time()))
