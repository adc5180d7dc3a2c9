"""ObjectStore: one bucket of objects (key -> bytes + metadata), local or S3-compatible.

Keys are `/`-separated paths. Stores refuse keys that could escape a bucket folder or confuse
a filesystem: absolute paths, `.` or `..` segments, empty segments, NUL or other control
characters. Output names derived from an input key use `safe_key`, which keeps any key usable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from facereel.errors import FacereelError

MAX_KEY_BYTES = 1024


class ObjectStoreError(FacereelError):
    """A storage operation failed (disk full, permission denied, server error...)."""

    code = "storage_error"


class ObjectNotFoundError(ObjectStoreError):
    code = "object_not_found"


class InvalidKeyError(ObjectStoreError):
    code = "invalid_key"


class PreconditionFailedError(ObjectStoreError):
    """A conditional write found another version than the one it was based on."""

    code = "precondition_failed"


def missing_bucket(what: str) -> ObjectStoreError:
    """A bucket that does not exist: hosts never create infrastructure, provisioning does."""
    return ObjectStoreError(f"{what} does not exist: create it with `facereel provision`",
                            "storage_no_bucket")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # content hash (MD5 hex for single-part uploads, as S3 gives)
    modified: float  # seconds since the epoch
    metadata: dict[str, str] = field(default_factory=dict)
    problem: str = ""  # an entry that exists but cannot be an object (a folder bucket's pipe...)


def key_problem(key: str) -> str | None:
    """Why `key` is unsafe, or None when it is fine."""
    if not key:
        return "key is empty"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"key is longer than {MAX_KEY_BYTES} bytes"
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        return "key contains NUL or control characters"
    if key.startswith("/") or key.startswith("\\") or (len(key) > 1 and key[1] == ":"):
        return "key is an absolute path"
    for segment in key.replace("\\", "/").split("/"):
        if segment in ("", ".", ".."):
            return f"key has a '{segment or '//'}' path segment"
    return None


def validate_key(key: str) -> str:
    problem = key_problem(key)
    if problem is not None:
        raise InvalidKeyError(f"invalid object key {key!r}: {problem}")
    return key


def safe_key(key: str) -> str:
    """A valid key that stands for `key` (percent-encoding what validation would refuse)."""
    if key_problem(key) is None:
        return key
    cleaned = "".join(c if ord(c) >= 32 and ord(c) != 127 else "?" for c in key)
    if cleaned.startswith(("/", "\\")):  # keep absolute apart from the relative key it names
        cleaned = "%2F/" + cleaned.lstrip("/\\")
    segments = [s.replace(".", "%2E") if s in (".", "..") else s
                for s in cleaned.replace("\\", "/").split("/")]
    joined = "/".join(s or "%2F" for s in segments)[:MAX_KEY_BYTES - 20]
    return joined if key_problem(joined) is None else f"invalid-{md5_hex(key.encode())[:16]}"


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def stem_of(key: str) -> str:
    """`dir/video.mp4` -> `dir/video` (the stem output files are named after)."""
    name = key.rsplit("/", 1)
    last = name[-1]
    base = last.rsplit(".", 1)[0] if "." in last.lstrip(".") else last
    return base if len(name) == 1 else f"{name[0]}/{base}"


class ObjectStore(Protocol):
    """One bucket. Writes are atomic (a reader never sees half an object); `expect` makes a
    write conditional: `""` writes only when the key is absent, an etag only when the object
    still has that etag, else `PreconditionFailedError` (what a read-modify-write needs to
    never lose a concurrent change). `remote` says whether each call is a network round trip
    (callers then run independent calls in parallel); `local_path` gives a file holding an
    object on this machine, so readers can skip a copy (None for a remote store)."""

    bucket: str
    remote: bool

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None,
                  content_type: str | None = None, *,
                  expect: str | None = None) -> ObjectInfo: ...

    def put_file(self, key: str, path: Path, metadata: dict[str, str] | None = None,
                 content_type: str | None = None) -> ObjectInfo: ...

    def get_bytes(self, key: str) -> bytes: ...

    def fetch(self, key: str) -> tuple[bytes, ObjectInfo]:
        """The object's bytes and the info of that very version (one request on S3)."""
        ...

    def download(self, key: str, path: Path) -> ObjectInfo: ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def list(self, prefix: str = "", settled_s: float = 0.0, *,
             ordered: bool = True) -> Iterator[ObjectInfo]:
        """Objects under `prefix` in key order; a folder bucket leaves out files changed less
        than `settled_s` ago (a copy still in progress); S3 objects appear whole. With
        `ordered=False` the same objects come in the store's own order, a page at a time, so a
        listing of millions of keys is never held in memory (a batch over a bucket)."""
        ...

    def local_path(self, key: str) -> Path | None: ...

    def delete(self, key: str) -> None: ...

    def describe(self) -> str: ...
