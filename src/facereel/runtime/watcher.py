"""Notice new objects in the input bucket and hand each to the pipeline, once.

Where the input bucket sends S3 event notifications to an SQS queue (`events_queue`; `facereel
provision` sets that up), the watcher reads those; otherwise it polls the bucket. Either way it
keeps a durable cursor (every key and content hash already handed over, in SQLite), so an
upload made while facereel was down is handed over when it comes back, and nothing twice for
the same content.

What "handing over" means is injected (`Send`): queueing the split stage's message (`up`,
`facereel watch`), or invoking an OpenFaaS function (`facereel watch --invoke URL`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from facereel.config import Settings
from facereel.config.sections import PipelineSettings
from facereel.core.results import error_result
from facereel.errors import FacereelError
from facereel.pipeline.publishing import publish_result
from facereel.pipeline.submit import MessageSend, submit
from facereel.pipeline.wiring import Ports
from facereel.ports.objectstore import ObjectInfo, ObjectNotFoundError, ObjectStore
from facereel.ports.objectstore.s3_events import parse_s3_event
from facereel.ports.queue import Queue
from facereel.ports.sqlite_db import SqliteDatabase

log = logging.getLogger(__name__)
RECONCILE_S = 300.0  # with S3 events, list the bucket this often anyway (events can be lost)
IDLE_POLL_S = 5.0  # a quiet remote bucket is listed at least this often
# Hand one upload (key, etag, size) over; True when it was delivered (the cursor then
# remembers it), False when it was not and should not be retried in this process (the sender
# said why). `SenderUnavailableError` means "not now": the round stops and the next one tries
# again; any other FacereelError is this entry's problem and the round goes on.
Send = Callable[[str, str, int], bool]
Record = Callable[[str, str, str, str], None]  # (key, etag, code, message): an error result


class SenderUnavailableError(FacereelError):
    """Whatever takes the uploads (a function, a queue) cannot take any now."""

    code = "sender_unavailable"


class Cursor(Protocol):
    """Which (key, etag) pairs of the input bucket have been queued: the watcher's memory."""

    def known(self) -> dict[str, str]: ...

    def mark(self, key: str, etag: str) -> None: ...


class SeenCursor:
    """Which (key, etag) pairs of a bucket have been queued: the watcher's durable memory."""

    def __init__(self, path: Path, bucket: str) -> None:
        self.bucket = bucket
        self._database = SqliteDatabase(
            Path(path), "CREATE TABLE IF NOT EXISTS seen (bucket TEXT, key TEXT, etag TEXT, "
            "queued_at REAL, PRIMARY KEY (bucket, key));")

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._database.transaction()

    def known(self) -> dict[str, str]:
        with self._db() as db:
            rows = db.execute("SELECT key, etag FROM seen WHERE bucket = ?", (self.bucket,))
            return {str(key): str(etag) for key, etag in rows}

    def mark(self, key: str, etag: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?)",
                       (self.bucket, key, etag, time.time()))


class BucketCursor:
    """The cursor as one JSON object in a bucket, for a host without a disk of its own (a
    scheduled Lambda polling a Ceph bucket). Read once per round; every mark writes it back,
    so a round cut short re-queues at most the upload it was on. One poller at a time (the
    template reserves a concurrency of 1)."""

    def __init__(self, store: ObjectStore, key: str) -> None:
        self.store = store
        self.key = key
        self._seen: dict[str, str] | None = None

    def known(self) -> dict[str, str]:
        try:
            seen = json.loads(self.store.get_bytes(self.key))
        except ObjectNotFoundError:
            seen = {}
        self._seen = {str(k): str(v) for k, v in dict(seen).items()}
        return dict(self._seen)

    def mark(self, key: str, etag: str) -> None:
        if self._seen is None:
            self.known()
        assert self._seen is not None
        self._seen[key] = etag
        self.store.put_bytes(self.key, json.dumps(self._seen, sort_keys=True).encode(),
                             content_type="application/json")


class Watcher:
    """Hands each new or changed object of the input bucket over (`send`), once.

    With an events queue (`events_queue`, wired to the bucket by `facereel provision`) it
    reacts to S3 notifications and still lists the bucket every `RECONCILE_S` seconds, since
    a notification can be lost; without one it polls the listing."""

    def __init__(self, input_bucket: ObjectStore, pipeline: PipelineSettings,
                 cursor: Cursor, send: Send, record: Record,
                 events: Queue | None = None) -> None:
        self.input = input_bucket
        self.pipeline = pipeline
        self.cursor = cursor
        self.send = send
        self.record = record  # publishes an error result for an entry that is refused
        self.events = events
        self.reconcile_s = RECONCILE_S

    def _listing(self) -> Iterable[ObjectInfo]:
        # a file still being copied into a folder bucket keeps changing: wait until it settles
        return self.input.list(settled_s=self.pipeline.settle)

    def submit(self, key: str, etag: str, size: int = 0) -> bool:
        """Hand one input object over, then remember it (only once it was delivered)."""
        delivered = self.send(key, etag, size)
        if delivered:  # after sending: a crash in between re-sends (harmless)
            self.cursor.mark(key, etag)
        return delivered

    def poll_once(self) -> int:
        """Queue every object that is new or whose content changed; returns how many. An
        entry that cannot be one (a pipe, a device, a link out of the bucket) is recorded as
        one error result, once; a failure on one entry never stops the round."""
        known = self.cursor.known()
        queued = 0
        for info in self._listing():
            tag = f"refused:{info.modified:.3f}" if info.problem else info.etag
            if known.get(info.key) == tag:
                continue
            try:
                if info.problem:
                    self._refuse(info, tag)
                elif self.submit(info.key, info.etag, info.size):
                    queued += 1
            except SenderUnavailableError:
                raise  # nothing can be handed over now: the next round tries again
            except FacereelError as exc:
                log.error("could not queue %s: %s", info.key, exc, extra={"key": info.key})
        if queued:
            log.info("queued %d new uploads", queued, extra={"queued": queued})
        return queued

    def _refuse(self, info: ObjectInfo, tag: str) -> None:
        name = info.key.rsplit("/", 1)[-1]
        log.warning("refusing %s: %s", info.key, info.problem, extra={"key": info.key})
        self.record(info.key, tag, "not_regular_file", f"{name}: {info.problem}; only regular "
                    "files in the bucket are processed")
        self.cursor.mark(info.key, tag)

    def drain_events(self, wait_s: float) -> int:
        """Queue the objects announced by S3 event notifications; returns how many."""
        assert self.events is not None
        queued = 0
        for message in self.events.receive(10, wait_s):
            for event in parse_s3_event(message.body):
                if event.bucket == self.input.bucket and self.submit(event.key, event.etag,
                                                                     event.size):
                    queued += 1
            self.events.ack(message)
        if queued:
            log.info("queued %d new uploads from S3 events", queued, extra={"queued": queued})
        return queued

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: catch up with a full listing, then follow events or keep polling."""
        self._safely(self.poll_once)
        last_listing = time.monotonic()
        delay = self.pipeline.poll_interval
        while not stop.is_set():
            if self.events is None:
                stop.wait(delay)
                if not stop.is_set():
                    delay = self._next_delay(delay, self._safely(self.poll_once))
                continue
            self._safely(self._drain)
            if time.monotonic() - last_listing >= self.reconcile_s:
                self._safely(self.poll_once)
                last_listing = time.monotonic()

    def _next_delay(self, delay: float, queued: object) -> float:
        """Poll a folder at the set interval (a listing is a few stats); a remote bucket, whose
        listing is a billed request that parses every key, twice as late after each quiet
        round, up to `IDLE_POLL_S`, and at the set interval again once uploads come."""
        if queued or not self.input.remote:
            return self.pipeline.poll_interval
        return min(max(self.pipeline.poll_interval, IDLE_POLL_S), delay * 2)

    def _drain(self) -> None:
        self.drain_events(wait_s=min(5.0, self.pipeline.poll_interval))

    def _safely(self, work: Callable[[], object]) -> object:
        try:
            return work()
        except FacereelError as exc:  # said in one line: storage or function unavailable
            log.error("watcher round failed (%s): %s; retrying", exc.code, exc.message)
            time.sleep(1.0)
            return None
        except Exception:  # a storage hiccup must not end the watcher; it retries next round
            log.exception("watcher round failed; retrying")
            time.sleep(1.0)
            return None


def queue_sender(ports: Ports, message_send: MessageSend | None = None) -> Send:
    """Hand uploads over as the pipeline's first message (and mark the row): queued, or
    handed on by `message_send` (a Lambda chain invokes the split function instead)."""

    def send(key: str, etag: str, size: int) -> bool:
        submit(ports, key, etag, size, message_send)
        return True

    return send


def watcher_for(settings: Settings, ports: Ports, send: Send | None = None) -> Watcher:
    """The watcher of `up` and `facereel watch`: its cursor in the data directory, the events
    queue when one is configured (the bucket is wired to it by `facereel provision`), and
    uploads queued for the pipeline unless another `send` is given."""
    storage = settings.storage
    cursor = SeenCursor(storage.data_dir / "watcher.db", ports.input.bucket)
    events = None
    if storage.events_queue:
        from facereel.pipeline.wiring import sqs_client
        from facereel.ports.queue.sqs import SqsQueue

        events = SqsQueue(sqs_client(storage), storage.events_queue, storage.visibility,
                          storage.max_attempts)
    return Watcher(ports.input, settings.pipeline, cursor, send or queue_sender(ports),
                   error_recorder(ports), events)


def error_recorder(ports: Ports) -> Record:
    """Record a refused input as one error result where every input ends (the output bucket
    and the video's row)."""

    def record(key: str, etag: str, code: str, message: str) -> None:
        name = key.rsplit("/", 1)[-1] or key
        publish_result(ports, key, etag, error_result(name, code, message))

    return record
