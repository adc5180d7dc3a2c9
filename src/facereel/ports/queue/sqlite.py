"""SqliteQueue: the embedded default Queue, durable in one SQLite file (several named queues).

Receiving is one transaction that picks visible messages and hides them, so concurrent workers
(threads or processes) never get the same delivery; a worker killed mid-task leaves its
message hidden only until the visibility timeout, then it is delivered again.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import AbstractContextManager
from pathlib import Path

from facereel.ports.queue import Body, DeadLetter, Message, QueueDepth, Redrive
from facereel.ports.sqlite_db import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'ready',  -- ready | inflight | delayed (until visible_at)
    receipt TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages(queue, visible_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    died_at REAL NOT NULL
);
"""
POLL_S = 0.05


class SqliteQueue:
    def __init__(self, path: Path, name: str, visibility_s: float = 120.0,
                 max_attempts: int = 5, poll_s: float = POLL_S) -> None:
        self.path = Path(path)
        self.name = name
        self.poll_s = poll_s  # how often a waiting receive looks again (latency vs. CPU)
        self.visibility_s = visibility_s
        self.max_attempts = max_attempts
        self._database = SqliteDatabase(self.path, SCHEMA)

    def describe(self) -> str:
        return f"sqlite queue {self.name} in {self.path}"

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._database.transaction()

    def send(self, body: Body, delay_s: float = 0.0) -> str:
        message_id = uuid.uuid4().hex
        now = time.time()
        with self._db() as db:
            db.execute(
                "INSERT INTO messages(id, queue, body, visible_at, state, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (message_id, self.name, json.dumps(body), now + delay_s,
                 "delayed" if delay_s > 0 else "ready", now),
            )
        return message_id

    def receive(self, max_messages: int = 1, wait_s: float = 0.0) -> list[Message]:
        deadline = time.monotonic() + wait_s
        while True:
            messages = self._take(max_messages)
            if messages or time.monotonic() >= deadline:
                return messages
            time.sleep(min(self.poll_s, max(0.0, deadline - time.monotonic())))

    def _take(self, max_messages: int) -> list[Message]:
        now = time.time()
        taken: list[Message] = []
        if not self._anything_visible(now):  # a read: polling never takes the write lock
            return taken
        with self._database.transaction(immediate=True) as db:
            rows = db.execute(
                "SELECT id, body, attempts FROM messages WHERE queue = ? AND visible_at <= ? "
                "ORDER BY visible_at LIMIT ?",
                (self.name, now, max_messages),
            ).fetchall()
            for message_id, body, attempts in rows:
                if attempts >= self.max_attempts:  # delivered enough times: dead letter
                    self._bury(db, message_id, body, attempts, now)
                    continue
                receipt = uuid.uuid4().hex
                db.execute(
                    "UPDATE messages SET visible_at = ?, attempts = attempts + 1, "
                    "receipt = ?, state = 'inflight' WHERE id = ?",
                    (now + self.visibility_s, receipt, message_id),
                )
                taken.append(Message(message_id, json.loads(body), receipt, attempts + 1))
        return taken

    def _anything_visible(self, now: float) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM messages WHERE queue = ? AND visible_at <= ? "
                              "LIMIT 1", (self.name, now)).fetchone() is not None

    def _bury(self, db: sqlite3.Connection, message_id: str, body: str, attempts: int,
              now: float) -> None:
        db.execute("INSERT OR REPLACE INTO dead_letters(id, queue, body, attempts, died_at) "
                   "VALUES (?, ?, ?, ?, ?)", (message_id, self.name, body, attempts, now))
        db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def ack(self, message: Message) -> None:
        with self._db() as db:
            db.execute("DELETE FROM messages WHERE id = ? AND receipt = ?",
                       (message.id, message.receipt))

    def retry(self, message: Message, delay_s: float) -> None:
        with self._db() as db:
            db.execute("UPDATE messages SET visible_at = ?, state = 'delayed' "
                       "WHERE id = ? AND receipt = ?",
                       (time.time() + delay_s, message.id, message.receipt))

    def extend(self, message: Message, visibility_s: float) -> None:
        with self._db() as db:
            db.execute("UPDATE messages SET visible_at = ? WHERE id = ? AND receipt = ?",
                       (time.time() + visibility_s, message.id, message.receipt))

    def depth(self) -> QueueDepth:
        now = time.time()
        with self._db() as db:
            visible, in_flight, delayed = db.execute(
                "SELECT SUM(visible_at <= ?), "
                "SUM(visible_at > ? AND state = 'inflight'), "
                "SUM(visible_at > ? AND state != 'inflight') "
                "FROM messages WHERE queue = ?",
                (now, now, now, self.name),
            ).fetchone()
            (dead,) = db.execute("SELECT COUNT(*) FROM dead_letters WHERE queue = ?",
                                 (self.name,)).fetchone()
        return QueueDepth(int(visible or 0), int(in_flight or 0), int(delayed or 0), int(dead))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._db() as db:
            rows = db.execute("SELECT id, body, attempts FROM dead_letters WHERE queue = ? "
                              "ORDER BY died_at LIMIT ?", (self.name, limit)).fetchall()
        return [DeadLetter(str(i), json.loads(body), int(n)) for i, body, n in rows]

    def redrive(self, select: Redrive) -> list[DeadLetter]:
        """In one transaction: a crash leaves every dead letter either dead or sent back."""
        sent: list[DeadLetter] = []
        now = time.time()
        with self._database.transaction(immediate=True) as db:
            rows = db.execute("SELECT id, body, attempts FROM dead_letters WHERE queue = ? "
                              "ORDER BY died_at", (self.name,)).fetchall()
            for message_id, text, attempts in rows:
                letter = DeadLetter(str(message_id), json.loads(text), int(attempts))
                body = select(letter)
                if body is None:
                    continue
                db.execute("INSERT INTO messages(id, queue, body, visible_at, state, created_at) "
                           "VALUES (?, ?, ?, ?, 'ready', ?)",
                           (uuid.uuid4().hex, self.name, json.dumps(body), now, now))
                db.execute("DELETE FROM dead_letters WHERE id = ?", (message_id,))
                sent.append(letter)
        return sent

    def purge(self) -> None:
        with self._db() as db:
            db.execute("DELETE FROM messages WHERE queue = ?", (self.name,))
            db.execute("DELETE FROM dead_letters WHERE queue = ?", (self.name,))
