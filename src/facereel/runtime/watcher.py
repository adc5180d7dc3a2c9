"""Notice new objects in the input bucket and queue them for the split stage.

Where the store offers S3 event notifications delivered to an SQS queue (`events_queue`),
the watcher reads those; otherwise it polls the bucket. Either way it keeps a durable cursor
(every key and content hash already queued, in SQLite), so an upload made while facereel was
down is queued when it comes back, and nothing is queued twice for the same content.
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
from facereel.pipeline.wiring import Ports
from facereel.ports.metadata import VideoRecord
from facereel.ports.objectstore import ObjectInfo
from facereel.ports.objectstore.local import LocalObjectStore
from facereel.ports.queue import Queue
from facereel.ports.sqlite_db import SqliteDatabase

log = logging.getLogger(__name__)


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
    def __init__(self, settings: Settings, ports: Ports) -> None:
        self.settings = settings
        self.ports = ports
        self.cursor = SeenCursor(settings.data_dir / "watcher.db", ports.input.bucket)
        self.events: Queue | None = None
        if settings.events_queue:
            self.events = self._subscribe(settings.events_queue)

    def _subscribe(self, queue_name: str) -> Queue | None:
        """Have the input bucket announce new objects on an SQS queue; None (keep polling)
        when the store cannot (SeaweedFS and local folders have no S3 notifications)."""
        from facereel.pipeline.wiring import sqs_client
        from facereel.ports.objectstore.s3 import S3ObjectStore
        from facereel.ports.objectstore.s3_events import enable_s3_notifications
        from facereel.ports.queue.sqs import SqsQueue

        store = self.ports.input
        if not isinstance(store, S3ObjectStore):
            log.warning("events_queue is set but the input bucket is %s: polling instead",
                        store.describe())
            return None
        client = sqs_client(self.settings)
        queue = SqsQueue(client, queue_name, self.settings.visibility, self.settings.max_attempts)
        try:
            enable_s3_notifications(store.client, store.bucket, client, queue.url)
        except Exception as exc:  # e.g. the endpoint does not implement notifications
            log.warning("cannot enable S3 notifications on %s (%s): polling instead",
                        store.describe(), exc)
            return None
        return queue

    def _listing(self) -> Iterable[ObjectInfo]:
        store = self.ports.input
        if isinstance(store, LocalObjectStore):
            # a file still being copied in keeps changing: wait until it settles
            return store.list(settled_s=self.settings.settle)
        return store.list()

    def submit(self, key: str, etag: str, size: int = 0) -> None:
        """Queue one input object for the pipeline (then remember it)."""
        self.ports.queues["split"].send({"key": key, "etag": etag, "size": size})
        self.ports.metadata.put_video(VideoRecord(key, etag, "queued", time.time()))
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
        from facereel.ports.objectstore.s3_events import parse_s3_event

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
        while not stop.is_set():
            if self.events is not None:
                self._safely(self._drain)
            else:
                stop.wait(self.settings.poll_interval)
                if not stop.is_set():
                    self._safely(self.poll_once)

    def _drain(self) -> None:
        self.drain_events(wait_s=min(5.0, self.settings.poll_interval))

    def _safely(self, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:  # a storage hiccup must not end the watcher; it retries next round
            log.exception("watcher round failed; retrying")
            time.sleep(1.0)
