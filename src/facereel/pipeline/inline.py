"""Run a message and everything it leads to in this process: what a host does when one
invocation carries a whole video through the pipeline (OpenFaaS's `face-recognition`, a
one-shot test), instead of handing each next message to a queue."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from facereel.pipeline.context import StageContext
from facereel.pipeline.definition import run_stage
from facereel.pipeline.stages import Delivery, Outgoing
from facereel.ports.queue import Body

StageRun = tuple[str, Body]


def correlation_id(body: Body) -> str:
    """One id per video content, the same on every host and stage: logs of a video's split,
    windows, recognition and publication can be found together."""
    seed = f"{body.get('key', '')}\0{body.get('etag', '')}".encode()
    return hashlib.sha256(seed).hexdigest()[:16]


def run_inline(context: StageContext, stage: str, body: Body, attempt: int = 1,
               on_stage: Callable[[str, Body], None] | None = None) -> list[StageRun]:
    """Every (stage, body) run, starting from one message, until no stage sends more. The
    first delivery keeps its attempt number; the messages it leads to are first deliveries."""
    ran: list[StageRun] = []
    todo: Outgoing = [(stage, body)]
    first = True
    while todo:
        name, message = todo.pop(0)
        if on_stage is not None:
            on_stage(name, message)
        ran.append((name, message))
        todo += run_stage(name, Delivery(message, attempt if first else 1), context)
        first = False
    return ran
