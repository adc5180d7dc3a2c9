"""S3ObjectStore: the ObjectStore port over one bucket of any S3-compatible service.

Works against AWS S3 and self-hosted servers (SeaweedFS, MinIO, Ceph): clients use path-style
addressing and only send checksums when an operation requires them, since several S3 clones
reject the newer default checksum headers. Calls behave like `LocalObjectStore`: keys are
validated before any request, `etag` is the bare MD5 hex for single-part uploads, listings
come in key order (SeaweedFS lists in directory-tree order, so pages are sorted here), and
every botocore failure becomes an `ObjectStoreError` with a stable code.

S3 only carries ASCII metadata and lowercases metadata names, so other values travel as
RFC 2047 encoded words (`=?UTF-8?B?...?=`) and are decoded on the way back; names should be
lowercase to read back exactly as written.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from boto3.s3.transfer import TransferConfig

from facereel.ports.aws import BOTO_ERRORS, boto_config, classify_boto_error, make_boto_client
from facereel.ports.objectstore import (
    InvalidKeyError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStoreError,
    PreconditionFailedError,
    missing_bucket,
    validate_key,
)

T = TypeVar("T")

DEFAULT_CONTENT_TYPE = "binary/octet-stream"  # what S3 reports when no type was given
MULTIPART_THRESHOLD = 256 << 20  # bigger files go multipart: their etag is then not an MD5
CHUNK = 1 << 20
_ENCODED = re.compile(r"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # what an HTTP header name may hold


def make_s3_client(endpoint_url: str | None, region: str | None, access_key: str | None,
                   secret_key: str | None, *, max_attempts: int = 5,
                   connect_timeout_s: float = 5.0, read_timeout_s: float = 60.0) -> Any:
    """An S3 client that also works with SeaweedFS, MinIO and Ceph: path-style addressing
    (no bucket DNS names) and checksums only when required (S3 clones reject the rest)."""
    config = boto_config(max_attempts, connect_timeout_s, read_timeout_s,
                         signature_version="s3v4", s3={"addressing_style": "path"},
                         request_checksum_calculation="when_required",
                         response_checksum_validation="when_required")
    return make_boto_client("s3", endpoint_url, region, access_key, secret_key, config)


def _encode_value(value: str) -> str:
    plain = (value.isascii() and value.isprintable() and value == value.strip()
             and not _ENCODED.fullmatch(value))
    if plain:
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def _decode_value(value: str) -> str:
    match = _ENCODED.fullmatch(value)
    if match is None:
        return value
    try:
        return base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return value


def encode_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """User metadata as S3 can carry it (lowercase ASCII names, encoded values)."""
    encoded: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        if not _TOKEN.fullmatch(name):
            raise ObjectStoreError(f"metadata name {name!r} is not a plain ASCII token",
                                   "invalid_metadata")
        encoded[name.lower()] = _encode_value(str(value))
    return encoded


def _decoded(metadata: dict[str, str], content_type: str | None) -> dict[str, str]:
    meta = {name.lower(): _decode_value(value) for name, value in metadata.items()}
    if content_type and content_type != DEFAULT_CONTENT_TYPE:
        meta["content-type"] = content_type
    return meta


def _timestamp(value: object) -> float:
    return value.timestamp() if isinstance(value, datetime) else 0.0


def _etag(value: object) -> str:
    return str(value or "").strip('"')


def _pages(client: Any, bucket: str, prefix: str) -> Iterator[list[ObjectInfo]]:
    """The listing of `prefix` a page (up to 1000 keys) at a time, as the server sends it."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        yield [ObjectInfo(item["Key"], int(item.get("Size", 0)), _etag(item.get("ETag")),
                          _timestamp(item.get("LastModified")))
               for item in page.get("Contents") or []]


def _list_objects(client: Any, bucket: str, prefix: str) -> list[ObjectInfo]:
    """Every object under `prefix`, sorted by key: SeaweedFS pages come in directory-tree
    order (`a/b/c` before `a-x`), S3 in UTF-8 byte order, which sorting code points matches."""
    found = [info for page in _pages(client, bucket, prefix) for info in page]
    return sorted(found, key=lambda info: info.key)


class S3ObjectStore:
    """One S3 bucket seen through the ObjectStore port."""

    remote = True  # every call is a round trip: independent calls run in parallel

    def __init__(self, client: Any, bucket: str) -> None:
        """The bucket must exist (`facereel provision` creates it): hosts never create
        infrastructure, and a missing bucket is reported on first use."""
        self.client = client
        self.bucket = bucket

    def describe(self) -> str:
        return f"s3 bucket {self.bucket} at {self.client.meta.endpoint_url}"

    # ---- errors -------------------------------------------------------------------------
    def _error(self, action: str, key: str | None, exc: BaseException) -> ObjectStoreError:
        kind, detail = classify_boto_error(exc)
        what = f"{key!r} in s3 bucket {self.bucket}" if key is not None else \
            f"s3 bucket {self.bucket}"
        if kind == "not_found" and key is not None:
            return ObjectNotFoundError(f"no object {key!r} in s3 bucket {self.bucket}")
        if kind == "bad_key" and key is not None:
            return InvalidKeyError(f"the server refused object key {key!r}: {detail}")
        if kind in ("no_container", "not_found"):
            return missing_bucket(f"cannot {action} {what}: s3 bucket {self.bucket} at "
                                  f"{self.client.meta.endpoint_url}")
        if kind == "precondition_failed":
            return PreconditionFailedError(f"{what} changed since it was read ({detail})")
        code = {"denied": "storage_denied", "unreachable": "storage_unreachable"}.get(
            kind, "storage_error")
        where = f" at {self.client.meta.endpoint_url}" if kind == "unreachable" else ""
        return ObjectStoreError(f"cannot {action} {what}{where}: {detail}", code)

    def _call(self, action: str, key: str | None, operation: Callable[[], T]) -> T:
        """Run one storage operation, turning any boto failure into an ObjectStoreError."""
        try:
            return operation()
        except BOTO_ERRORS as exc:
            raise self._error(action, key, exc) from exc

    # ---- writing ------------------------------------------------------------------------
    def _put_args(self, key: str, metadata: dict[str, str] | None,
                  content_type: str | None) -> dict[str, Any]:
        return {"Bucket": self.bucket, "Key": key, "Metadata": encode_metadata(metadata),
                "ContentType": content_type or DEFAULT_CONTENT_TYPE}

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None,
                  content_type: str | None = None, *,
                  expect: str | None = None) -> ObjectInfo:
        args = self._put_args(validate_key(key), metadata, content_type)
        if expect is not None:  # S3 conditional writes: If-None-Match / If-Match
            args.update({"IfNoneMatch": "*"} if expect == "" else {"IfMatch": f'"{expect}"'})
        response = self._call("write", key, lambda: self.client.put_object(Body=data, **args))
        return self._written(key, len(data), response, metadata, content_type)

    def put_file(self, key: str, path: Path, metadata: dict[str, str] | None = None,
                 content_type: str | None = None) -> ObjectInfo:
        args = self._put_args(validate_key(key), metadata, content_type)
        try:
            size = Path(path).stat().st_size
            if size >= MULTIPART_THRESHOLD:
                return self._put_large(key, Path(path), args)
            with Path(path).open("rb") as source:
                response = self._call("write", key,
                                      lambda: self.client.put_object(Body=source, **args))
        except OSError as exc:
            raise ObjectStoreError(f"cannot read {path} to upload it as {key!r}: "
                                   f"{exc.strerror or exc}", "storage_error") from exc
        return self._written(key, size, response, metadata, content_type)

    def _put_large(self, key: str, path: Path, args: dict[str, Any]) -> ObjectInfo:
        """Multipart upload (parallel parts, resumable per part); S3 then gives an etag of
        the form `<md5 of part md5s>-<parts>`, not the content MD5."""
        extra = {"Metadata": args["Metadata"], "ContentType": args["ContentType"]}
        transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD)
        self._call("upload", key, lambda: self.client.upload_file(
            str(path), self.bucket, key, ExtraArgs=extra, Config=transfer))
        info = self.head(key)
        if info is None:
            raise ObjectStoreError(f"uploaded {key!r} but s3 bucket {self.bucket} does not "
                                   "show it", "storage_error")
        return info

    def _written(self, key: str, size: int, response: dict[str, Any],
                 metadata: dict[str, str] | None, content_type: str | None) -> ObjectInfo:
        meta = {name.lower(): str(value) for name, value in (metadata or {}).items()}
        if content_type:
            meta["content-type"] = content_type
        modified = _timestamp(response.get("LastModified")) or time.time()
        return ObjectInfo(key, size, _etag(response.get("ETag")), modified, meta)

    # ---- reading ------------------------------------------------------------------------
    def _info(self, key: str, response: dict[str, Any]) -> ObjectInfo:
        return ObjectInfo(key, int(response.get("ContentLength", 0)),
                          _etag(response.get("ETag")), _timestamp(response.get("LastModified")),
                          _decoded(response.get("Metadata") or {}, response.get("ContentType")))

    def get_bytes(self, key: str) -> bytes:
        validate_key(key)

        def read() -> bytes:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return bytes(response["Body"].read())

        return self._call("read", key, read)

    def fetch(self, key: str) -> tuple[bytes, ObjectInfo]:
        validate_key(key)

        def read() -> tuple[bytes, ObjectInfo]:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return bytes(response["Body"].read()), self._info(key, response)

        return self._call("read", key, read)

    def download(self, key: str, path: Path) -> ObjectInfo:
        """Stream the object into `path` through a temporary file beside it, so `path` never
        holds half an object."""
        validate_key(key)
        target = Path(path)
        try:
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        except OSError as exc:
            raise ObjectStoreError(f"cannot download {key!r} to {target}: "
                                   f"{exc.strerror or exc}", "storage_error") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                info = self._call("download", key, lambda: self._stream(key, handle))
            Path(temporary).replace(target)
        except OSError as exc:
            raise ObjectStoreError(f"cannot download {key!r} to {target}: "
                                   f"{exc.strerror or exc}", "storage_error") from exc
        finally:
            Path(temporary).unlink(missing_ok=True)
        return info

    def _stream(self, key: str, handle: Any) -> ObjectInfo:
        response = self.client.get_object(Bucket=self.bucket, Key=key)
        for chunk in response["Body"].iter_chunks(CHUNK):
            handle.write(chunk)
        return self._info(key, response)

    def head(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        try:
            response = self._call("inspect", key,
                                  lambda: self.client.head_object(Bucket=self.bucket, Key=key))
        except ObjectNotFoundError:
            return None
        return self._info(key, response)

    def local_path(self, key: str) -> Path | None:
        return None  # objects live on the server: read them with `download`

    def list(self, prefix: str = "", settled_s: float = 0.0, *, ordered: bool = True,
             with_metadata: bool = False) -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix`, in key order (S3 objects appear whole, so
        `settled_s` has nothing to wait for), or unordered a page at a time. A listing carries
        no user metadata on S3; `with_metadata` fetches it with one HEAD per object."""
        listing = self._call("list", None, partial(_list_objects, self.client, self.bucket,
                                                   prefix)) if ordered \
            else self._paged(prefix)
        for info in listing:
            if not with_metadata:
                yield info
                continue
            full = self.head(info.key)
            if full is not None:  # deleted since it was listed
                yield full

    def _paged(self, prefix: str) -> Iterator[ObjectInfo]:
        pages = _pages(self.client, self.bucket, prefix)
        while True:  # each page is one request: its failure is an ObjectStoreError too
            page = self._call("list", None, lambda: next(pages, None))
            if page is None:
                return
            yield from page

    def delete(self, key: str) -> None:
        validate_key(key)
        self._call("delete", key, lambda: self.client.delete_object(Bucket=self.bucket, Key=key))
