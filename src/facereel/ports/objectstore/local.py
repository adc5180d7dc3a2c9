"""LocalObjectStore: a bucket is a plain folder a person can use with a file manager.

Objects are files under the folder; their metadata and content hashes live in a hidden
`.facereel/` folder beside them. Writes go to a temporary file first and are renamed into
place, so a reader never sees half an object. Files that other programs drop into the folder
are objects too: `list(settled_s=...)` only reports those whose size and modification time
have not changed for a while, so a copy still in progress is not picked up half-written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from facereel.ports.objectstore import (
    InvalidKeyError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStoreError,
    PreconditionFailedError,
    validate_key,
)
from facereel.ports.objectstore.local_files import (
    NAME_MAX,
    entry_problem,
    hash_file,
    open_regular,
    sidecar_name,
)

HIDDEN = ".facereel"
PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".download", "~")
CHUNK = 1 << 20


def _storage_error(action: str, key: str, exc: OSError) -> ObjectStoreError:
    code = {errno.ENOSPC: "storage_full", errno.EDQUOT: "storage_full",
            errno.EACCES: "storage_denied", errno.EPERM: "storage_denied",
            errno.EROFS: "storage_denied"}.get(exc.errno or 0, "storage_error")
    return ObjectStoreError(f"cannot {action} {key!r}: {exc.strerror or exc}", code)


def _visible(name: str) -> bool:
    return not name.startswith(".") and not name.endswith(PARTIAL_SUFFIXES)


class LocalObjectStore:
    remote = False  # a call is a file operation: running several at once gains nothing

    def __init__(self, root: Path, bucket: str | None = None,
                 max_bytes: int = 64 << 30) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes  # a file dropped in is read (hashed) up to this size
        self.bucket = bucket or self.root.name
        self.root.mkdir(parents=True, exist_ok=True)
        self._meta = self.root / HIDDEN / "meta"
        self._tmp = self.root / HIDDEN / "tmp"
        # key -> (size, mtime_ns, info): a poller listing the same files again only stats them
        self._known: dict[str, tuple[int, int, ObjectInfo]] = {}

    def describe(self) -> str:
        return f"folder {self.root}"

    def _path(self, key: str) -> Path:
        parts = validate_key(key).split("/")
        if parts[0] == HIDDEN:
            raise InvalidKeyError(f"invalid object key {key!r}: {HIDDEN}/ is the store's own")
        if any(len(part.encode("utf-8", "surrogateescape")) > NAME_MAX for part in parts):
            raise InvalidKeyError(f"invalid object key {key!r}: a name in it is longer than "
                                  f"{NAME_MAX} bytes, which a folder cannot hold")
        return self.root.joinpath(*parts)

    def _meta_path(self, key: str) -> Path:
        parts = key.split("/")
        return self._meta.joinpath(*parts[:-1], sidecar_name(parts[-1]))

    # ---- writing ------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None,
                  content_type: str | None = None, *,
                  expect: str | None = None) -> ObjectInfo:
        target = self._path(key)
        digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if expect is None:
            self._write(key, target, lambda handle: handle.write(data))
            return self._record(key, target, digest, metadata, content_type)
        with self._conditional_lock(key):
            current = self.head(key)
            if (current.etag if current is not None else "") != expect:
                raise PreconditionFailedError(f"{key!r} in {self.bucket} changed since it was "
                                              "read (expected another version)")
            self._write(key, target, lambda handle: handle.write(data))
            return self._record(key, target, digest, metadata, content_type)

    @contextlib.contextmanager
    def _conditional_lock(self, key: str) -> Iterator[None]:
        """Serialise conditional writes of the bucket (across processes): compare and write
        happen under one lock, as S3 does for `If-Match`. Keys written conditionally are
        only ever written that way (the gallery manifest), so plain writes need no lock."""
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
            handle = (self.root / HIDDEN / "conditional.lock").open("a")
        except OSError as exc:
            raise _storage_error("lock", key, exc) from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def put_file(self, key: str, path: Path, metadata: dict[str, str] | None = None,
                 content_type: str | None = None) -> ObjectInfo:
        target = self._path(key)
        digest = hashlib.md5(usedforsecurity=False)

        def copy(handle: BinaryIO) -> None:
            with Path(path).open("rb") as source:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)

        self._write(key, target, copy)
        return self._record(key, target, digest.hexdigest(), metadata, content_type)

    def _write(self, key: str, target: Path, fill: Callable[[BinaryIO], object]) -> None:
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self._tmp)
            try:
                with os.fdopen(fd, "wb") as handle:
                    fill(handle)
                target.parent.mkdir(parents=True, exist_ok=True)
                Path(temporary).replace(target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise _storage_error("write", key, exc) from exc

    def _record(self, key: str, target: Path, etag: str, metadata: dict[str, str] | None,
                content_type: str | None) -> ObjectInfo:
        stat = target.stat()
        meta = dict(metadata or {})
        if content_type:
            meta["content-type"] = content_type
        sidecar = {"etag": etag, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                   "metadata": meta}
        self._write_sidecar(key, sidecar)
        info = ObjectInfo(key, stat.st_size, etag, stat.st_mtime, meta)
        self._known[key] = (stat.st_size, stat.st_mtime_ns, info)
        return info

    def _write_sidecar(self, key: str, sidecar: dict[str, object]) -> None:
        path = self._meta_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # a temporary name of its own: threads of one process may write the same sidecar
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".sidecar-",
                                             suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(sidecar))
            Path(temporary).replace(path)
        except OSError as exc:
            raise _storage_error("write metadata of", key, exc) from exc

    # ---- reading ------------------------------------------------------------------------
    def get_bytes(self, key: str) -> bytes:
        return self.fetch(key)[0]

    def fetch(self, key: str) -> tuple[bytes, ObjectInfo]:
        target = self._readable(key)
        try:
            with os.fdopen(open_regular(target, key), "rb") as handle:
                # the info of the file we read, not of one that replaced it meanwhile
                info = self._info(key, target, os.fstat(handle.fileno()))
                return handle.read(), info
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(f"no object {key!r} in {self.bucket}") from exc
        except OSError as exc:
            raise _storage_error("read", key, exc) from exc

    def _readable(self, key: str) -> Path:
        """The file of an object that may be read: not a pipe, device or link out of the bucket."""
        target = self._path(key)
        if not os.path.lexists(target):
            raise ObjectNotFoundError(f"no object {key!r} in {self.bucket}")
        problem = entry_problem(self.root, target)
        if problem is not None:
            raise ObjectStoreError(f"{key!r} is {problem}", "not_regular_file")
        return target

    def download(self, key: str, path: Path) -> ObjectInfo:
        data, info = self.fetch(key)
        try:
            Path(path).write_bytes(data)
        except OSError as exc:
            raise _storage_error("download", key, exc) from exc
        return info

    def local_path(self, key: str) -> Path | None:
        """The file holding an object (lets readers skip a copy on the same machine); only
        regular files (and links to them inside the bucket) are handed out."""
        return self._readable(key)

    def head(self, key: str) -> ObjectInfo | None:
        """The object's info; an entry that exists but is no object (a pipe, a device, a link
        out of the bucket) is answered with its `problem` instead of being opened."""
        target = self._path(key)
        if not os.path.lexists(target):
            return None
        return self._entry(key, target)

    def _entry(self, key: str, target: Path, settled_s: float = 0.0,
               now: float = 0.0) -> ObjectInfo | None:
        problem = entry_problem(self.root, target)
        try:
            status = target.stat() if problem is None else target.lstat()
        except FileNotFoundError:
            return None  # removed meanwhile
        except OSError as exc:
            raise _storage_error("stat", key, exc) from exc
        if settled_s and now - status.st_mtime < settled_s:
            return None  # still being written
        if problem is not None:
            return ObjectInfo(key, 0, "", status.st_mtime, problem=problem)
        try:
            return self._info(key, target, status)
        except ObjectStoreError as exc:
            return ObjectInfo(key, status.st_size, "", status.st_mtime, problem=exc.message)

    def _info(self, key: str, target: Path, stat: os.stat_result) -> ObjectInfo:
        known = self._known.get(key)
        if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
            return known[2]
        info = self._read_info(key, target, stat)
        self._known[key] = (stat.st_size, stat.st_mtime_ns, info)
        return info

    def _read_info(self, key: str, target: Path, stat: os.stat_result) -> ObjectInfo:
        sidecar = self._read_sidecar(key) or {}
        fresh = sidecar.get("size") == stat.st_size and sidecar.get("mtime_ns") == stat.st_mtime_ns
        if fresh:
            stored = sidecar.get("metadata")
            etag = str(sidecar["etag"])
            meta = {str(k): str(v) for k, v in stored.items()} if isinstance(stored, dict) else {}
        else:  # dropped in (or replaced) by another program: hash it once, remember it
            etag, meta = self._hash(key, target), {}
            self._write_sidecar(key, {"etag": etag, "size": stat.st_size,
                                      "mtime_ns": stat.st_mtime_ns, "metadata": meta})
        return ObjectInfo(key, stat.st_size, etag, stat.st_mtime, meta)

    def _read_sidecar(self, key: str) -> dict[str, object] | None:
        try:
            data = json.loads(self._meta_path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _hash(self, key: str, target: Path) -> str:
        try:
            return hash_file(target, key, self.max_bytes)
        except OSError as exc:
            raise _storage_error("read", key, exc) from exc

    def list(self, prefix: str = "", settled_s: float = 0.0, *,
             ordered: bool = True) -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix`, in key order (or, unordered, as the folder
        walk finds them); with `settled_s`, only files left unchanged for that long (a copy in
        progress keeps changing)."""
        now = time.time()
        entries = sorted(self._walk()) if ordered else self._walk()
        for key, path in entries:
            if not key.startswith(prefix):
                continue
            try:
                found = self._entry(key, path, settled_s, now)
            except ObjectStoreError as exc:  # one unreadable entry never stops a listing
                found = ObjectInfo(key, 0, "", now, problem=exc.message)
            if found is not None:
                yield found

    def _walk(self) -> Iterator[tuple[str, Path]]:
        """Every entry of the folder (links to folders are not followed)."""
        for directory, folders, files in os.walk(self.root):
            folders[:] = [f for f in folders if _visible(f)]
            base = Path(directory).relative_to(self.root)
            for name in files:
                if _visible(name):
                    key = "/".join((*base.parts, name))
                    yield key, Path(directory) / name

    def delete(self, key: str) -> None:
        """Remove the object, and the folders it leaves empty (a key's folders exist only for
        its objects: each image request left two empty folders behind)."""
        self._known.pop(key, None)
        try:
            for path, top in ((self._path(key), self.root), (self._meta_path(key), self._meta)):
                path.unlink(missing_ok=True)
                _prune(path.parent, top)
        except OSError as exc:
            raise _storage_error("delete", key, exc) from exc


def _prune(folder: Path, top: Path) -> None:
    """Remove `folder` and its parents up to (not including) `top` while they are empty."""
    while folder != top and folder.is_relative_to(top):
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (or gone): stop here
        folder = folder.parent
