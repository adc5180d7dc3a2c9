"""SQLite MetadataStore: the embedded default, one file, no server.

Listings read an index in listing order (`updated`, then `key`, both descending) and stop
after a page: by status through videos_status_listing, by person through
person_videos_listing, which `put_video` keeps in step with each row in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

from facereel.ports.metadata import (
    PersonRecord,
    VideoPage,
    VideoQuery,
    VideoRecord,
    page_of,
)
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
DROP INDEX IF EXISTS videos_status;  -- served by videos_status_listing since
CREATE INDEX IF NOT EXISTS videos_listing ON videos(updated, key);
CREATE INDEX IF NOT EXISTS videos_status_listing ON videos(status, updated, key);
CREATE TABLE IF NOT EXISTS person_videos (  -- the people each row names, to find them by person
    person TEXT NOT NULL,
    key TEXT NOT NULL,
    updated REAL NOT NULL,  -- the row's, so one index serves person + time
    PRIMARY KEY (person, key)
);
CREATE INDEX IF NOT EXISTS person_videos_listing ON person_videos(person, updated, key);
CREATE TABLE IF NOT EXISTS windows (
    video TEXT NOT NULL,
    window INTEGER NOT NULL,
    PRIMARY KEY (video, window)
);
"""


PERSON_INDEX_VERSION = 1  # user_version from which person_videos covers every row


class SqliteMetadata:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._database = SqliteDatabase(self.path, SCHEMA)
        self._index_older_rows()

    def _index_older_rows(self) -> None:
        """Rows written before person_videos existed get their people indexed, once."""
        with self._connect() as db:
            (version,) = db.execute("PRAGMA user_version").fetchone()
        if version >= PERSON_INDEX_VERSION:
            return
        with self._database.transaction(immediate=True) as db:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version >= PERSON_INDEX_VERSION:
                return  # another process did it meanwhile
            db.execute("INSERT OR IGNORE INTO person_videos(person, key, updated) "
                       "SELECT p.value, v.key, v.updated FROM videos v, "
                       "json_each(v.record, '$.people') p WHERE p.type = 'text'")
            db.execute(f"PRAGMA user_version = {PERSON_INDEX_VERSION}")

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
            db.execute("DELETE FROM person_videos WHERE key = ?", (record.key,))
            db.executemany("INSERT OR IGNORE INTO person_videos(person, key, updated) "
                           "VALUES (?, ?, ?)",
                           [(person, record.key, record.updated) for person in record.people])

    def get_video(self, key: str) -> VideoRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT record FROM videos WHERE key = ?", (key,)).fetchone()
        return VideoRecord.from_item(json.loads(row[0])) if row else None

    def list_videos(self, query: VideoQuery) -> VideoPage:
        """By person: that person's index in order, each row checked; else each status's
        index in order (one query per status, merged: an IN over the index would sort every
        row of those statuses first)."""
        if query.person is not None or len(query.statuses) <= 1:
            found = self._select(query)
        else:
            found = [row for status in query.statuses
                     for row in self._select(replace(query, statuses=(status,)))]
            found.sort(key=lambda r: r.position, reverse=True)
        return page_of(found, query.size)

    def _select(self, query: VideoQuery) -> list[VideoRecord]:
        """Up to a page and one rows, in listing order, read along one index."""
        by_person = query.person is not None
        table = "person_videos i JOIN videos v ON v.key = i.key" if by_person else "videos v"
        order = "i" if by_person else "v"  # the index read: its columns give the order
        where, args = list[str](), list[object]()
        if by_person:
            where, args = ["i.person = ?"], [query.person]
        if query.statuses:
            where.append(f"v.status IN ({', '.join('?' * len(query.statuses))})")
            args += query.statuses
        for condition, value in ((f"{order}.updated >= ?", query.since),
                                 (f"{order}.updated <= ?", query.until)):
            if value is not None:
                where.append(condition)
                args.append(value)
        if query.after is not None:
            where.append(f"({order}.updated, {order}.key) < (?, ?)")
            args += [query.after.updated, query.after.key]
        sql = (f"SELECT v.record FROM {table} WHERE {' AND '.join(where) or '1'} "
               f"ORDER BY {order}.updated DESC, {order}.key DESC LIMIT ?")
        with self._connect() as db:
            rows = db.execute(sql, (*args, query.size + 1)).fetchall()
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
