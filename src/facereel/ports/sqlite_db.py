"""Shared SQLite plumbing: one long-lived connection per thread (and process).

Opening a connection per operation is expensive in WAL mode: closing the last connection to a
database checkpoints and syncs its log, which cost ~15 ms per queue operation here. Keeping a
connection per thread makes an operation cost a fraction of a millisecond.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SqliteDatabase:
    def __init__(self, path: Path, schema: str = "") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        if schema:
            self._connection().executescript(schema)  # runs (and commits) on its own

    def _connection(self) -> sqlite3.Connection:
        cached = getattr(self._local, "db", None)
        if cached is not None and self._local.pid == os.getpid():
            return cached  # type: ignore[no-any-return]
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                             check_same_thread=False)
        _enable_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")  # durable across crashes of the process
        self._local.db, self._local.pid = db, os.getpid()
        return db

    @contextmanager
    def transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """A transaction on this thread's connection: committed on success, else rolled back."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _enable_wal(db: sqlite3.Connection, attempts: int = 200) -> None:
    """Switch the file to WAL once; tolerate other processes doing the same at the same moment.

    Changing the journal mode needs an exclusive lock that SQLite does not wait for through its
    busy handler, so processes that all start together (workers of `facereel up`) can see
    "database is locked" here. The mode is persistent: once any process has set it, it is read
    back as "wal" and nothing needs changing.
    """
    for _ in range(attempts):
        try:
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            time.sleep(0.05)
    db.execute("PRAGMA journal_mode=WAL")  # the last try raises the real error, if any
