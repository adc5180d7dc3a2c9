"""SQLite MetadataStore: the embedded default, one file, no server."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from facereel.ports.metadata import PersonRecord, VideoRecord
from facereel.ports.sqlite_db import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS people (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS videos (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    updated REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS videos_status ON videos(status);
CREATE TABLE IF NOT EXISTS windows (
    video TEXT NOT NULL,
    window INTEGER NOT NULL,
    PRIMARY KEY (video, window)
);
"""


class SqliteMetadata:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._database = SqliteDatabase(self.path, SCHEMA)

    def describe(self) -> str:
        return f"sqlite database {self.path}"

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._database.transaction()

    def put_people(self, records: Iterable[PersonRecord]) -> int:
        rows = [(r["name"], json.dumps(r, sort_keys=True)) for r in records]
        with self._connect() as db:
            db.executemany(
                "INSERT INTO people(name, record) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET record = excluded.record",
                rows,
            )
        return len(rows)

    def get_person(self, name: str) -> PersonRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT record FROM people WHERE name = ?", (name,)).fetchone()
        return dict(json.loads(row[0])) if row else None

    def list_people(self) -> list[PersonRecord]:
        with self._connect() as db:
            rows = db.execute("SELECT record FROM people ORDER BY name").fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def delete_person(self, name: str) -> bool:
        with self._connect() as db:
            cursor = db.execute("DELETE FROM people WHERE name = ?", (name,))
        return cursor.rowcount > 0

    def put_video(self, record: VideoRecord) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO videos(key, status, updated, record) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET status = excluded.status, "
                "updated = excluded.updated, record = excluded.record",
                (record.key, record.status, record.updated, json.dumps(record.to_item())),
            )

    def get_video(self, key: str) -> VideoRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT record FROM videos WHERE key = ?", (key,)).fetchone()
        return VideoRecord.from_item(json.loads(row[0])) if row else None

    def list_videos(self, status: str | None = None, limit: int = 1000) -> list[VideoRecord]:
        query = "SELECT record FROM videos"
        args: tuple[object, ...] = ()
        if status is not None:
            query, args = query + " WHERE status = ?", (status,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY updated DESC LIMIT ?", (*args, limit)).fetchall()
        return [VideoRecord.from_item(json.loads(r[0])) for r in rows]

    def mark_window(self, key: str, etag: str, window: int) -> tuple[int, bool]:
        video = f"{etag}/{key}"
        with self._database.transaction(immediate=True) as db:
            added = db.execute("INSERT OR IGNORE INTO windows VALUES (?, ?)",
                               (video, window)).rowcount > 0
            (count,) = db.execute("SELECT COUNT(*) FROM windows WHERE video = ?",
                                  (video,)).fetchone()
        return int(count), added

    def video_counts(self) -> dict[str, int]:
        with self._connect() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM videos GROUP BY status").fetchall()
        return {str(status): int(count) for status, count in rows}
