"""The image web tier: HTTP requests -> request queue -> app-tier workers -> response queue.

The web process (this client) stores each uploaded image in the stage-1 bucket (queues carry
keys, never pixels), sends `{id, key, filename, reply_to}` on the request queue and waits, with
a timeout, for the answer on its own response queue, which one dispatcher thread reads and
hands to the waiting request. App-tier workers (`imagetier.worker`, scaled by the autoscaler)
take a request, recognize the image, answer, and delete the stored image.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import time
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from facereel.app.status import IMAGES
from facereel.config.sections import StorageSettings
from facereel.errors import FacereelError
from facereel.pipeline.wiring import Ports, tier_queue
from facereel.ports.queue import Body, Queue

log = logging.getLogger(__name__)
REQUESTS = IMAGES  # the request queue, as `facereel status` reads it
REQUEST_FIELDS = ("id", "key", "filename", "reply_to")
RECOGNIZE, EMBED = "recognize", "embed"  # what a request asks of the app tier
# How long one receive waits before the loop looks at its stop signal again. Locally that is
# a poll; on SQS it is a long poll that returns as soon as a message arrives, so waiting
# longer costs no latency and saves the requests (and the bill) of polling.
LISTEN_S = {"sqlite": 0.25, "sqs": 2.0}


@dataclass(frozen=True, slots=True)
class ImageAnswer:
    filename: str
    name: str  # top person, or "unknown"
    result: dict[str, Any]  # the result document
    seconds: float  # from submission to answer


class ImageTierTimeoutError(FacereelError):
    code = "timeout"


def _timed_out(timeout_s: float) -> ImageTierTimeoutError:
    return ImageTierTimeoutError(f"no app-tier worker answered within {timeout_s:g} s",
                                 "timeout")


@dataclass(frozen=True, slots=True)
class Pending:
    id: str
    filename: str
    started: float  # perf_counter at submission
    future: Future[Body]

    def answer(self, body: Body) -> ImageAnswer:
        return ImageAnswer(self.filename, str(body["name"]), dict(body["result"]),
                           time.perf_counter() - self.started)


def reply_queue_name(port: int) -> str:
    """This server's response queue: stable across restarts (so cloud queues are reused, not
    piled up), distinct for two servers on one host. Late answers to a previous run's
    requests are read and dropped."""
    where = re.sub(r"[^A-Za-z0-9_-]", "-", f"{socket.gethostname()}-{port}")
    return f"{REQUESTS}-reply-{where}"[:80]


class ImageTierClient:
    """The web process's side: submit an image, get the answer back (or a timeout)."""

    def __init__(self, storage: StorageSettings, ports: Ports, port: int) -> None:
        self.ports = ports
        self.requests = tier_queue(storage, REQUESTS, interactive=True)
        self.reply_to = reply_queue_name(port)
        self.responses = reply_queue(storage, self.reply_to)
        self.listen_s = LISTEN_S[storage.queue_backend]
        self._waiting: dict[str, Future[Body]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._dispatch, name="image-replies",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def submit(self, filename: str, data: bytes, kind: str = RECOGNIZE) -> Pending:
        """Store the image and queue the request; the answer arrives on `Pending.future`.
        `kind`: `recognize` (who is in it) or `embed` (the face to enrol, for the people
        routes: detection runs on the app tier, never in the web process)."""
        request_id = uuid.uuid4().hex
        name = PurePosixPath(filename.replace("\\", "/")).name or "image"
        key = f"web-requests/{request_id}-{name}"  # flat: deleting it leaves no folder
        pending = Pending(request_id, name, time.perf_counter(), Future())
        self.ports.stage1.put_bytes(key, data)
        with self._lock:
            self._waiting[request_id] = pending.future
        self.requests.send({"id": request_id, "key": key, "filename": name,
                            "reply_to": self.reply_to, "kind": kind})
        return pending

    def forget(self, pending: Pending) -> None:
        with self._lock:
            self._waiting.pop(pending.id, None)

    def ask(self, filename: str, data: bytes, timeout_s: float) -> ImageAnswer:
        """Submit and wait in this thread (scripts, tests)."""
        pending = self.submit(filename, data)
        try:
            body = pending.future.result(timeout=timeout_s)
        except FutureTimeout as exc:
            raise _timed_out(timeout_s) from exc
        finally:
            self.forget(pending)
        return pending.answer(body)

    async def ask_async(self, filename: str, data: bytes, timeout_s: float) -> ImageAnswer:
        """Submit (in a worker thread) and wait without holding a thread: hundreds of
        requests can wait at once while the app tier works through the queue."""
        pending, body = await self._roundtrip(filename, data, timeout_s, RECOGNIZE)
        return pending.answer(body)

    async def embed_async(self, filename: str, data: bytes, timeout_s: float) -> Body:
        """The app tier's answer to an `embed` request: `vector` and `note`, or `error`."""
        return (await self._roundtrip(filename, data, timeout_s, EMBED))[1]

    async def _roundtrip(self, filename: str, data: bytes, timeout_s: float,
                         kind: str) -> tuple[Pending, Body]:
        pending = await asyncio.to_thread(self.submit, filename, data, kind)
        try:
            body = await asyncio.wait_for(asyncio.wrap_future(pending.future), timeout_s)
        except TimeoutError as exc:
            raise _timed_out(timeout_s) from exc
        finally:
            self.forget(pending)
        return pending, body

    def _dispatch(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self.responses.receive(10, wait_s=self.listen_s)
            except Exception:  # a storage hiccup: keep dispatching
                log.exception("reading image answers failed")
                time.sleep(0.5)
                continue
            for message in messages:
                with self._lock:
                    future = self._waiting.get(str(message.body.get("id")))
                if future is not None and not future.done():
                    future.set_result(message.body)
                self.responses.ack(message)  # late answers (after a timeout) are dropped


def reply_queue(storage: StorageSettings, name: str) -> Queue:
    """This server's own response queue. It is the one queue a host creates: its name depends
    on the host and port, so provisioning cannot know it in advance (on SQS it is created
    here, with a short retention: answers are useless after the request timed out)."""
    if storage.queue_backend == "sqs":
        from facereel.pipeline.wiring import queue_name, sqs_client
        from facereel.ports.aws_resources import ensure_queue

        ensure_queue(sqs_client(storage), queue_name(storage, name),
                     {"MessageRetentionPeriod": "300"})
    return tier_queue(storage, name, interactive=True)
