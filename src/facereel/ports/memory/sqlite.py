"""SQLite MemoryStore: the embedded default, one file (DATA_DIR/memory.db), no server.

Every write is one IMMEDIATE transaction (one writer at a time across processes), so a
video's record is replaced whole, and change numbers (an AUTOINCREMENT column, never reused)
are handed out in commit order: `horizon()` is simply the last one handed out.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from facereel.ports.memory import (
    Change,
    Shot,
    TrackMemory,
    VideoMemory,
    VideoSummary,
    detail_of,
    detail_text,
    vectors_from_bytes,
)
from facereel.ports.sqlite_db import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_videos (
    video TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    written REAL NOT NULL,
    detector TEXT NOT NULL,
    aligner TEXT NOT NULL,
    embedder TEXT NOT NULL,
    tracks INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS memory_tracks (
    video TEXT NOT NULL,
    position INTEGER NOT NULL,
    track_id TEXT NOT NULL,
    person TEXT,
    nearest TEXT,
    distance REAL,
    appearances TEXT NOT NULL,
    face TEXT NOT NULL,
    shots TEXT NOT NULL,
    embeddings BLOB NOT NULL,
    detail TEXT,
    PRIMARY KEY (video, position)
);
CREATE INDEX IF NOT EXISTS memory_tracks_person ON memory_tracks(person);
CREATE TABLE IF NOT EXISTS memory_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    video TEXT NOT NULL,
    at REAL NOT NULL
);
"""
TRACK_COLUMNS = ("track_id, person, nearest, distance, appearances, face, shots, embeddings, "
                 "detail")


class SqliteMemory:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._database = SqliteDatabase(self.path, SCHEMA)
        self._add_detail_column()

    def _add_detail_column(self) -> None:
        """Databases made before tracks kept their detail get the column (empty)."""
        with self._database.transaction(immediate=True) as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(memory_tracks)")}
            if "detail" not in columns:
                db.execute("ALTER TABLE memory_tracks ADD COLUMN detail TEXT")

    def describe(self) -> str:
        return f"sqlite database {self.path}"

    def remember(self, memory: VideoMemory) -> bool:
        with self._database.transaction(immediate=True) as db:
            row = db.execute("SELECT etag FROM memory_videos WHERE video = ?",
                             (memory.video,)).fetchone()
            if row is not None and row[0] == memory.etag:
                return False  # this content is remembered already: nothing is added
            self._write(db, memory, version=0, written=memory.written)
        return True

    def replace(self, memory: VideoMemory) -> bool:
        with self._database.transaction(immediate=True) as db:
            row = db.execute("SELECT etag, version, written FROM memory_videos WHERE video = ?",
                             (memory.video,)).fetchone()
            if row is None or (row[0], row[1]) != (memory.etag, memory.version):
                return False
            self._write(db, memory, version=memory.version + 1, written=float(row[2]))
        return True

    def _write(self, db: sqlite3.Connection, memory: VideoMemory, version: int,
               written: float) -> None:
        db.execute("DELETE FROM memory_tracks WHERE video = ?", (memory.video,))
        db.executemany(f"INSERT INTO memory_tracks (video, position, {TRACK_COLUMNS}) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [(memory.video, n, *_track_row(t)) for n, t in enumerate(memory.tracks)])
        seq = _change(db, memory.video)
        db.execute("INSERT OR REPLACE INTO memory_videos VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (memory.video, memory.etag, version, seq, written, memory.detector,
                    memory.aligner, memory.embedder, len(memory.tracks)))

    def get(self, video: str) -> VideoMemory | None:
        with self._database.transaction() as db:
            head = db.execute("SELECT etag, version, written, detector, aligner, embedder "
                              "FROM memory_videos WHERE video = ?", (video,)).fetchone()
            if head is None:
                return None
            rows = db.execute(f"SELECT {TRACK_COLUMNS} FROM memory_tracks WHERE video = ? "
                              "ORDER BY position", (video,)).fetchall()
        etag, version, written, detector, aligner, embedder = head
        return VideoMemory(video, etag, detector, aligner, embedder,
                           [_track(row) for row in rows], float(written), int(version))

    def forget(self, video: str) -> bool:
        with self._database.transaction(immediate=True) as db:
            found = db.execute("DELETE FROM memory_videos WHERE video = ?",
                               (video,)).rowcount > 0
            db.execute("DELETE FROM memory_tracks WHERE video = ?", (video,))
            if found:
                _change(db, video)
        return found

    def changes(self, after: int, limit: int = 1000) -> list[Change]:
        with self._database.transaction() as db:
            rows = db.execute("SELECT seq, video FROM memory_changes WHERE seq > ? "
                              "ORDER BY seq LIMIT ?", (after, max(1, limit))).fetchall()
        return [Change(int(seq), str(video)) for seq, video in rows]

    def horizon(self) -> int:
        """The last change number handed out: writers commit one at a time, in order."""
        with self._database.transaction() as db:
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'memory_changes'"
                             ).fetchone()
        return int(row[0]) if row else 0

    def prune_changes(self, upto: int, before: float) -> int:
        with self._database.transaction(immediate=True) as db:
            return int(db.execute("DELETE FROM memory_changes WHERE seq <= ? AND at < ?",
                                  (upto, before)).rowcount)

    def videos(self) -> Iterator[VideoSummary]:
        with self._database.transaction() as db:
            rows = db.execute("SELECT video, etag, version, embedder, written, tracks "
                              "FROM memory_videos ORDER BY video").fetchall()
        for video, etag, version, embedder, written, tracks in rows:
            yield VideoSummary(video, etag, int(version), embedder, float(written), int(tracks))

    def tracks_of(self, person: str) -> list[tuple[str, str]]:
        with self._database.transaction() as db:
            rows = db.execute("SELECT video, track_id FROM memory_tracks WHERE person = ? "
                              "ORDER BY video, position", (person,)).fetchall()
        return [(str(video), str(track)) for video, track in rows]


def _change(db: sqlite3.Connection, video: str) -> int:
    cursor = db.execute("INSERT INTO memory_changes (video, at) VALUES (?, ?)",
                        (video, time.time()))
    return int(cursor.lastrowid or 0)


def _track_row(track: TrackMemory) -> tuple[Any, ...]:
    vectors = np.ascontiguousarray(track.embeddings, dtype="<f4")
    return (track.track_id, track.person, track.nearest, track.distance,
            json.dumps([list(a) for a in track.appearances]), track.face,
            json.dumps([[s.at_ms, s.crop] for s in track.shots]), vectors.tobytes(),
            detail_text(track.detail))


def _track(row: tuple[Any, ...]) -> TrackMemory:
    track_id, person, nearest, distance, appearances, face, shots, blob, detail = row
    shot_list = [Shot(int(at), str(crop)) for at, crop in json.loads(shots)]
    return TrackMemory(track_id=str(track_id),
                       appearances=[(int(a), int(b)) for a, b in json.loads(appearances)],
                       face=str(face), shots=shot_list,
                       embeddings=vectors_from_bytes(bytes(blob), len(shot_list)),
                       person=person, nearest=nearest,
                       distance=None if distance is None else float(distance),
                       detail=detail_of(detail))
