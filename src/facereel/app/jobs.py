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
DROP INDEX IF EXISTS jobs_created;  -- served by jobs_listing since
CREATE INDEX IF NOT EXISTS jobs_listing ON jobs(created, id);
"""
JOB_STATES = ("queued", "running", "done", "failed")
MAX_EXAMINED = 1000  # jobs one page looks at: a rare state is paged through, never searched

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


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[Job]
    next: tuple[float, str] | None  # (created, id) of the job the next page follows


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

    def page(self, limit: int = 50, states: tuple[str, ...] = (),
             after: tuple[float, str] | None = None) -> JobPage:
        """Jobs newest first (after the job at `after`: its (created, id)); with `states`,
        only jobs in one of them. A job's state comes from its video's row, so it is checked
        as jobs are read, at most MAX_EXAMINED per page: a page may hold fewer than `limit`
        while `next` is set."""
        found: list[Job] = []
        frontier, examined = after, 0
        while len(found) <= limit and examined < MAX_EXAMINED:
            wanted = min(limit + 1, MAX_EXAMINED - examined)
            rows = self._rows_after(frontier, wanted)
            found += [job for job in (self._with_state(*row) for row in rows)
                      if not states or job.state in states]
            examined += len(rows)
            if len(rows) < wanted:  # the last job was read: nothing follows
                frontier = None
                break
            frontier = (rows[-1][3], rows[-1][0])
        if len(found) > limit:
            return JobPage(found[:limit], (found[limit - 1].created, found[limit - 1].id))
        return JobPage(found, frontier)

    def _rows_after(self, after: tuple[float, str] | None,
                    count: int) -> list[tuple[str, str, str, float]]:
        where, args = ("WHERE (created, id) < (?, ?) ", after) if after else ("", ())
        with self._database.transaction() as db:
            rows = db.execute(f"SELECT id, key, etag, created FROM jobs {where}"
                              "ORDER BY created DESC, id DESC LIMIT ?", (*args, count)).fetchall()
        return [(str(i), str(k), str(e), float(c)) for i, k, e, c in rows]

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
