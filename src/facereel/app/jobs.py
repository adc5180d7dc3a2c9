"""Jobs: what the HTTP API hands back for work it queued, and how far along that work is.

A job names one video (key + content etag) given to the pipeline; its state comes from the
video's metadata row, so it stays right whichever worker (or machine) does the work.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facereel.ports.metadata import MetadataStore
from facereel.ports.sqlite_db import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    etag TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created);
"""

# video row status -> (job state, progress)
PROGRESS = {
    "queued": ("queued", 0.0),
    "processing": ("running", 0.3),
    "recognizing": ("running", 0.8),
    "recognising": ("running", 0.8),  # rows written before the stage was spelled `recognize`
    "done": ("done", 1.0),
    "error": ("failed", 1.0),
    "dead": ("failed", 1.0),
}


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    key: str
    etag: str
    created: float
    state: str  # queued | running | done | failed
    progress: float
    result_key: str = ""
    error: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"job": self.id, "key": self.key, "status": self.state,
                               "progress": self.progress, "created": self.created}
        if self.result_key:
            doc["result"] = self.result_key
        if self.error:
            doc["error"] = self.error
        return doc


class JobStore:
    def __init__(self, path: Path, metadata: MetadataStore) -> None:
        self._database = SqliteDatabase(path, SCHEMA)
        self.metadata = metadata

    def create(self, key: str, etag: str) -> Job:
        job_id = uuid.uuid4().hex[:16]
        now = time.time()
        with self._database.transaction() as db:
            db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?)", (job_id, key, etag, now))
        return Job(job_id, key, etag, now, "queued", 0.0)

    def get(self, job_id: str) -> Job | None:
        with self._database.transaction() as db:
            row = db.execute("SELECT id, key, etag, created FROM jobs WHERE id = ?",
                             (job_id,)).fetchone()
        return self._with_state(*row) if row else None

    def recent(self, limit: int = 50) -> list[Job]:
        with self._database.transaction() as db:
            rows = db.execute("SELECT id, key, etag, created FROM jobs ORDER BY created DESC "
                              "LIMIT ?", (limit,)).fetchall()
        return [self._with_state(*row) for row in rows]

    def _with_state(self, job_id: str, key: str, etag: str, created: float) -> Job:
        record = self.metadata.get_video(key)
        if record is None or (etag and record.etag and record.etag != etag):
            # no row yet, or the row already describes newer content under the same key
            stale = record is not None
            return Job(job_id, key, etag, created, "failed" if stale else "queued",
                       1.0 if stale else 0.0,
                       error={"code": "superseded",
                              "message": f"{key} was replaced by a newer upload"}
                       if stale else None)
        state, progress = PROGRESS.get(record.status, ("queued", 0.0))
        error = ({"code": record.error_code, "message": record.error_message}
                 if state == "failed" else None)
        return Job(job_id, key, etag, created, state, progress, record.result_key, error)
