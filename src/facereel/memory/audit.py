"""The audit log: who searched the face memory, forgot something or enrolled someone, what,
when, and how it ended. One JSON object per line, appended (DATA_DIR/audit.log, or
`FACEREEL_AUDIT_LOG`), readable only by its owner. `who` names a caller without a secret:
an API key's fingerprint (`key:1f2e3d4c5b6a`), or `cli:<user>` for the command line.

    {"at": "2025-01-31T09:12:03.120Z", "who": "key:1f2e3d4c5b6a", "via": "api",
     "action": "search", "target": {"person": "Ada"}, "outcome": "ok", "matches": 3}
"""

from __future__ import annotations

import getpass
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, who: str, via: str, action: str, target: dict[str, Any], outcome: str,
              **detail: Any) -> None:
        at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = json.dumps({"at": at, "who": who, "via": via, "action": action,
                           "target": target, "outcome": outcome, **detail}, default=str)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one write() of one line with O_APPEND: lines of concurrent writers never interleave
        with _LOCK:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)

    @contextmanager
    def audited(self, who: str, via: str, action: str,
                target: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Write one line when the block ends: `ok` with what the block put in the dict it
        is given, or `error` with the failure's code (the failure goes on)."""
        detail: dict[str, Any] = {}
        try:
            yield detail
        except BaseException as exc:
            code = getattr(exc, "code", None) or type(exc).__name__
            self.write(who, via, action, target, "error", error=str(code))
            raise
        self.write(who, via, action, target, "ok", **detail)


def cli_user() -> str:
    """`cli:<login name>` for the command line's audit lines."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid-{os.getuid()}"
