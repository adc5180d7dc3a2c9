"""Notice new objects in the input bucket and queue them for the split stage.

Where the input bucket sends S3 event notifications to an SQS queue (`events_queue`; `facereel
provision` sets that up), the watcher reads those; otherwise it polls the bucket. Either way it
keeps a durable cursor (every key and content hash already queued, in SQLite), so an upload
made while facereel was down is queued when it comes back, and nothing is queued twice for
the same content.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from facereel.config import Settings
from facereel.config.sections import PipelineSettings
from facereel.core.results import error_result
from facereel.errors import FacereelError
from facereel.pipeline.publishing import publish_result
from facereel.pipeline.submit import submit
from facereel.pipeline.wiring import Ports
from facereel.ports.objectstore import ObjectInfo
from facereel.ports.objectstore.s3_events import parse_s3_event
from facereel.ports.queue import Queue
from facereel.ports.sqlite_db import SqliteDatabase

log = logging.getLogger(__name__)
RECONCILE_S = 300.0  # with S3 events, list the bucket this often anyway (events can be lost)
IDLE_POLL_S = 5.0  # a quiet remote bucket is listed at least this often


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


class Watcher:
    """Queues each new or changed object of the input bucket, once.

    With an events queue (`events_queue`, wired to the bucket by `facereel provision`) it
    reacts to S3 notifications and still lists the bucket every `RECONCILE_S` seconds, since
    a notification can be lost; without one it polls the listing."""

    def __init__(self, ports: Ports, pipeline: PipelineSettings, cursor: SeenCursor,
                 events: Queue | None = None) -> None:
        self.ports = ports
        self.pipeline = pipeline
        self.cursor = cursor
        self.events = events
        self.reconcile_s = RECONCILE_S

    def _listing(self) -> Iterable[ObjectInfo]:
        # a file still being copied into a folder bucket keeps changing: wait until it settles
        return self.ports.input.list(settled_s=self.pipeline.settle)

    def submit(self, key: str, etag: str, size: int = 0) -> None:
        """Queue one input object for the pipeline (then remember it)."""
        submit(self.ports, key, etag, size)
        self.cursor.mark(key, etag)  # after sending: a crash in between re-sends (harmless)

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
                else:
                    self.submit(info.key, info.etag, info.size)
                    queued += 1
            except FacereelError as exc:
                log.error("could not queue %s: %s", info.key, exc, extra={"key": info.key})
        if queued:
            log.info("queued %d new uploads", queued, extra={"queued": queued})
        return queued

    def _refuse(self, info: ObjectInfo, tag: str) -> None:
        name = info.key.rsplit("/", 1)[-1]
        log.warning("refusing %s: %s", info.key, info.problem, extra={"key": info.key})
        result = error_result(name, "not_regular_file", f"{info.key}: {info.problem}; only "
                              "regular files in the bucket are processed")
        publish_result(self.ports, info.key, tag, result)
        self.cursor.mark(info.key, tag)

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
        if queued or not self.ports.input.remote:
            return self.pipeline.poll_interval
        return min(max(self.pipeline.poll_interval, IDLE_POLL_S), delay * 2)

    def _drain(self) -> None:
        self.drain_events(wait_s=min(5.0, self.pipeline.poll_interval))

    def _safely(self, work: Callable[[], object]) -> object:
        try:
            return work()
        except Exception:  # a storage hiccup must not end the watcher; it retries next round
            log.exception("watcher round failed; retrying")
            time.sleep(1.0)
            return None


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
