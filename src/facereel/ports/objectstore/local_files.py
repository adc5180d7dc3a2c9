"""Which files a folder bucket takes, and reading them with bounds.

A folder is shared with other programs and users, so anything can appear in it: a named pipe
(opening it for reading blocks until a writer comes: it wedged the watcher), a device or a
link to one (`/dev/zero` reads forever: the watcher hashed it at 100% CPU), a link to a file
outside the bucket (which would be processed as if uploaded). Only regular files, and links
to regular files inside the bucket, are objects; other entries are reported with the reason,
so the watcher can record each as one error instead of silently skipping or hanging. Every
read opens without blocking, checks what it opened, and is bounded in size and time.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

from facereel.ports.objectstore import ObjectStoreError

NAME_MAX = 255  # bytes in one file name (ext4, xfs, ...)
CHUNK = 1 << 20
MAX_HASH_S = 300.0


def kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def entry_problem(root: Path, path: Path) -> str | None:
    """Why the entry at `path` is not an object of the bucket at `root` (None: it is one)."""
    try:
        link = path.lstat()
        if stat.S_ISLNK(link.st_mode):
            target = path.resolve(strict=True)
            if not target.is_relative_to(root.resolve()):
                return "a symbolic link to a file outside the bucket"
            link = target.stat()
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    return None if stat.S_ISREG(link.st_mode) else kind_of(link.st_mode)


def open_regular(path: Path, key: str) -> int:
    """A file descriptor of the regular file at `path`, opened without blocking (a named pipe
    swapped in after a check cannot wedge the reader)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ObjectStoreError(f"{key!r} is {kind_of(mode)}, not a file facereel reads",
                               "not_regular_file")
    os.set_blocking(fd, True)
    return fd


def hash_file(path: Path, key: str, max_bytes: int, max_seconds: float = MAX_HASH_S) -> str:
    """MD5 of the file (the etag), read within `max_bytes` and `max_seconds`."""
    digest = hashlib.md5(usedforsecurity=False)
    deadline = time.monotonic() + max_seconds
    fd = open_regular(path, key)
    read = 0
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(CHUNK):
            read += len(chunk)
            if read > max_bytes:
                raise ObjectStoreError(f"{key!r} is larger than {max_bytes} bytes", "too_large")
            if time.monotonic() > deadline:
                raise ObjectStoreError(f"reading {key!r} took longer than {max_seconds:g} s",
                                       "timeout")
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_name(name: str) -> str:
    """The metadata file of an object called `name`: `<name>.json`, or a name made from its
    hash when that would not fit in a file name (a 250-byte name made every poll fail)."""
    candidate = f"{name}.json"
    if len(candidate.encode("utf-8", "surrogateescape")) <= NAME_MAX:
        return candidate
    return f"long-{hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()}.json"
