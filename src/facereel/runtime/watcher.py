"""Notice new objects in the input bucket and queue them for the split stage.

Where the input bucket sends S3 event notifications to an SQS queue (`events_queue`; `facereel
provision` sets that up), the watcher reads those; otherwise it polls the bucket. Either way it
keeps a durable cursor (every key and content hash already queued, in SQLite), so an upload
made while facereel was down is queued when it comes back, and nothing is queued twice for
the same content.
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
from facereel.pipeline.submit import Send, submit
from facereel.pipeline.wiring import Ports
from facereel.ports.objectstore import ObjectInfo, ObjectNotFoundError, ObjectStore
from facereel.ports.objectstore.s3_events import parse_s3_event
from facereel.ports.queue import Queue
from facereel.ports.sqlite_db import SqliteDatabase

log = logging.getLogger(__name__)
RECONCILE_S = 300.0  # with S3 events, list the bucket this often anyway (events can be lost)


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
    """Queues each new or changed object of the input bucket, once.

    With an events queue (`events_queue`, wired to the bucket by `facereel provision`) it
    reacts to S3 notifications and still lists the bucket every `RECONCILE_S` seconds, since
    a notification can be lost; without one it polls the listing."""

    def __init__(self, ports: Ports, pipeline: PipelineSettings, cursor: Cursor,
                 events: Queue | None = None, send: Send | None = None) -> None:
        self.ports = ports
        self.send = send  # how the first message is handed on (default: the split queue)
        self.pipeline = pipeline
        self.cursor = cursor
        self.events = events
        self.reconcile_s = RECONCILE_S

    def _listing(self) -> Iterable[ObjectInfo]:
        # a file still being copied into a folder bucket keeps changing: wait until it settles
        return self.ports.input.list(settled_s=self.pipeline.settle)

    def submit(self, key: str, etag: str, size: int = 0) -> None:
        """Queue one input object for the pipeline (then remember it)."""
        submit(self.ports, key, etag, size, self.send)
        self.cursor.mark(key, etag)  # after sending: a crash in between re-sends (harmless)

    def poll_once(self) -> int:
        """Queue every object that is new or whose content changed; returns how many."""
        known = self.cursor.known()
        queued = 0
        for info in self._listing():
            if known.get(info.key) != info.etag:
                self.submit(info.key, info.etag, info.size)
                queued += 1
        if queued:
            log.info("queued %d new uploads", queued, extra={"queued": queued})
        return queued

    def drain_events(self, wait_s: float) -> int:
        """Queue the objects announced by S3 event notifications; returns how many."""
        assert self.events is not None
        queued = 0
        for message in self.events.receive(10, wait_s):
            for event in parse_s3_event(message.body):
                if event.bucket == self.ports.input.bucket:
                    self.submit(event.key, event.etag, event.size)
                    queued += 1
            self.events.ack(message)
        if queued:
            log.info("queued %d new uploads from S3 events", queued, extra={"queued": queued})
        return queued

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: catch up with a full listing, then follow events or keep polling."""
        self._safely(self.poll_once)
        last_listing = time.monotonic()
        while not stop.is_set():
            if self.events is None:
                stop.wait(self.pipeline.poll_interval)
                if not stop.is_set():
                    self._safely(self.poll_once)
                continue
            self._safely(self._drain)
            if time.monotonic() - last_listing >= self.reconcile_s:
                self._safely(self.poll_once)
                last_listing = time.monotonic()

    def _drain(self) -> None:
        self.drain_events(wait_s=min(5.0, self.pipeline.poll_interval))

    def _safely(self, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:  # a storage hiccup must not end the watcher; it retries next round
            log.exception("watcher round failed; retrying")
            time.sleep(1.0)


def watcher_for(settings: Settings, ports: Ports) -> Watcher:
    """The watcher of `up` and `facereel watch`: its cursor in the data directory, and the
    events queue when one is configured (the bucket is wired to it by `facereel provision`)."""
    storage = settings.storage
    cursor = SeenCursor(storage.data_dir / "watcher.db", ports.input.bucket)
    events = None
    if storage.events_queue:
        from facereel.pipeline.wiring import sqs_client
        from facereel.ports.queue.sqs import SqsQueue

        events = SqsQueue(sqs_client(storage), storage.events_queue, storage.visibility,
                          storage.max_attempts)
    return Watcher(ports, settings.pipeline, cursor, events)
