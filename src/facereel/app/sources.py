"""Where a batch's inputs come from and where its results go: files and folders on this
machine, or `s3://bucket/prefix`, read with the input bucket's settings (endpoint, region,
credentials; the bucket named by the URL) and written with the output bucket's.

Inputs are streamed: folders are walked and buckets listed lazily (a page of keys at a time),
so a listing of millions of keys is never held. An item only says where its bytes live; the
process that analyses it opens it, downloading a remote object there (never in the parent
process or the driver of a cluster).

Output names are an input's path under the root its source names: a folder argument is its
own root, a file's root is its folder, `s3://b/videos/` is rooted at `videos/` (so is
`s3://b/videos/test_`). Sources on one machine share the root they have in common (`a/`
and `b/` give `a/x.mp4.json` and `b/x.mp4.json`); each bucket likewise; when several buckets
(or a bucket and local files) are given, a bucket's names start with the bucket's name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from facereel.config.sections import BucketSettings, StorageSettings
from facereel.core.results import VideoResult
from facereel.core.sniff import MEDIA_EXTENSIONS
from facereel.errors import ConfigError, FacereelError
from facereel.pipeline.inline import correlation_id
from facereel.pipeline.publishing import face_files, output_files
from facereel.ports.objectstore import ObjectInfo, ObjectStore

S3 = "s3://"


@dataclass(frozen=True, slots=True)
class Location:
    """A source or an output: a path on this machine, or a bucket and key prefix on S3."""

    path: Path | None = None
    bucket: str = ""
    prefix: str = ""

    @property
    def remote(self) -> bool:
        return self.path is None

    @property
    def folder(self) -> str:
        """The prefix's folder (`videos/test_` -> `videos/`): where names are rooted."""
        return self.prefix.rpartition("/")[0] + "/" if "/" in self.prefix else ""

    def __str__(self) -> str:
        return f"{S3}{self.bucket}/{self.prefix}" if self.remote else str(self.path)


def parse_location(text: str) -> Location:
    """`s3://bucket/prefix` or a local path."""
    if not text.startswith(S3):
        return Location(path=Path(text))
    bucket, _, prefix = text[len(S3):].partition("/")
    if not bucket:
        raise ConfigError(f"{text!r}: an S3 location is s3://bucket/prefix")
    return Location(bucket=bucket, prefix=prefix)


@dataclass(frozen=True, slots=True)
class InputItem:
    """One input of a batch: its position, its output name, and where its bytes live (a file
    on this machine, or an object of a bucket with the etag the listing gave)."""

    index: int
    name: str  # output name: `<name>.json`, `<stem>.txt`, `<stem>.csv`
    path: str = ""
    bucket: str = ""
    key: str = ""
    etag: str = ""

    @property
    def video(self) -> str:
        """What the result document calls the input: its file name, as `recognize` does."""
        return self.key.rpartition("/")[2] if self.bucket else Path(self.path).name

    @property
    def correlation(self) -> str:
        """The per-video id every host logs (the same key and etag give the same id)."""
        return correlation_id({"key": self.key or self.path, "etag": self.etag})


class Listing(Protocol):
    """What a bucket source needs of a store: a lazy listing (`ObjectStore.list`)."""

    def list(self, prefix: str = "", settled_s: float = 0.0, *,
             ordered: bool = True) -> Iterator[ObjectInfo]: ...


def bucket_settings(base: BucketSettings, bucket: str) -> BucketSettings:
    """A bucket named by a URL, reached with the endpoint and credentials of `base`."""
    return base.model_copy(update={"name": bucket, "backend": "s3"})


def _is_media(relative: str) -> bool:
    """A media file's name (by extension), not inside a hidden folder nor hidden itself
    (string work: a bucket source checks millions of keys)."""
    name = relative.rpartition("/")[2]
    suffix = name[name.rfind("."):].lower() if "." in name.lstrip(".") else ""
    return suffix in MEDIA_EXTENSIONS and not relative.startswith(".") and "/." not in relative


def walk_folder(folder: Path) -> Iterator[Path]:
    """The media files under `folder`, lazily (folder by folder, sorted within each)."""
    for directory, folders, files in os.walk(folder):
        folders.sort()
        for name in sorted(files):
            path = Path(directory) / name
            if _is_media(path.relative_to(folder).as_posix()) and path.is_file():
                yield path


def _common(paths: list[PurePosixPath]) -> PurePosixPath:
    return PurePosixPath(os.path.commonpath([str(p) for p in paths])) if paths \
        else PurePosixPath()


@dataclass
class Sources:
    """The inputs named on a command line, streamed as `InputItem`s."""

    locations: list[Location]
    listings: dict[str, Listing] = field(default_factory=dict)  # bucket -> its store

    def roots(self) -> tuple[Path | None, dict[str, str]]:
        """The root local names are relative to, and each bucket's root prefix."""
        local = [loc.path for loc in self.locations if loc.path is not None]
        absolute = [Path(os.path.abspath(p)) for p in local]  # noqa: PTH100 - no link resolving
        root = Path(os.path.commonpath([p if p.is_dir() else p.parent for p in absolute])) \
            if absolute else None
        buckets: dict[str, str] = {}
        for bucket in {loc.bucket for loc in self.locations if loc.remote}:
            folders = [PurePosixPath(loc.folder or ".") for loc in self.locations
                       if loc.bucket == bucket]
            common = str(_common(folders))
            buckets[bucket] = "" if common == "." else common + "/"
        return root, buckets

    def items(self) -> Iterator[InputItem]:
        root, buckets = self.roots()
        labelled = len(buckets) + (root is not None) > 1
        index = 0
        for location in self.locations:
            for item in self._of(location, root, buckets, labelled):
                yield InputItem(index, item.name, item.path, item.bucket, item.key, item.etag)
                index += 1

    def _of(self, location: Location, root: Path | None, buckets: dict[str, str],
            labelled: bool) -> Iterator[InputItem]:
        if location.path is not None:
            files: Iterable[Path] = walk_folder(location.path) if location.path.is_dir() \
                else [location.path]
            for path in files:
                absolute = Path(os.path.abspath(path))  # noqa: PTH100
                name = absolute.relative_to(root).as_posix() if root else absolute.name
                yield InputItem(0, name, path=str(path))
            return
        start = buckets[location.bucket]
        for info in self.listings[location.bucket].list(location.prefix, ordered=False):
            relative = info.key[len(start):]
            if not _is_media(relative):
                continue
            name = f"{location.bucket}/{relative}" if labelled else relative
            yield InputItem(0, name, bucket=location.bucket, key=info.key, etag=info.etag)


class BucketStores:
    """Stores of the buckets URLs name, opened once each: inputs with the input bucket's
    settings, outputs with the output bucket's."""

    def __init__(self, storage: StorageSettings) -> None:
        self.storage = storage
        self._open: dict[tuple[str, str], ObjectStore] = {}

    def get(self, bucket: str, role: str = "input") -> ObjectStore:
        from facereel.pipeline.wiring import object_store

        if (role, bucket) not in self._open:
            base = self.storage.input if role == "input" else self.storage.output
            self._open[role, bucket] = object_store(self.storage, bucket_settings(base, bucket))
        return self._open[role, bucket]


def open_sources(texts: list[str], storage: StorageSettings) -> Sources:
    locations = [parse_location(text) for text in texts]
    stores = BucketStores(storage)
    listings: dict[str, Listing] = {loc.bucket: stores.get(loc.bucket) for loc in locations
                                    if loc.remote}
    return Sources(locations, listings)


@contextmanager
def opened(item: InputItem, stores: BucketStores) -> Iterator[Path]:
    """A local file holding the item's bytes: the file itself, or the object downloaded to a
    temporary file in this process (removed afterwards)."""
    if not item.bucket:
        yield Path(item.path)
        return
    from facereel.pipeline.stages import fetched

    with fetched(stores.get(item.bucket), item.key) as (path, info):
        if info is None:
            raise FacereelError(f"{item.key}: not in bucket {item.bucket} (deleted since it "
                                "was listed?)", "not_found")
        yield path


class OutputSink(Protocol):
    def write(self, name: str, result: VideoResult) -> None:
        """`<name>.json`, `<stem>.txt` and `<stem>.csv` of one result."""
        ...

    def describe(self) -> str: ...


@dataclass
class FolderSink:
    folder: Path

    def write(self, name: str, result: VideoResult) -> None:
        files = [(file_name, text.encode()) for file_name, text, _ in output_files(name, result)]
        for file_name, data in files + face_files(name, result):
            target = self.folder / file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def describe(self) -> str:
        return str(self.folder)


@dataclass
class BucketSink:
    store: ObjectStore
    prefix: str  # a folder in the bucket ("" or ending in /)

    def write(self, name: str, result: VideoResult) -> None:
        for file_name, text, kind in output_files(name, result):
            self.store.put_bytes(self.prefix + file_name, text.encode(), None, kind)
        for file_name, image in face_files(name, result):
            self.store.put_bytes(self.prefix + file_name, image, None, "image/jpeg")

    def describe(self) -> str:
        return f"{S3}{self.store.bucket}/{self.prefix}"


def make_sink(location: Location, storage: StorageSettings) -> OutputSink:
    """Where results go: a folder, or a bucket reached with the output bucket's settings."""
    if location.path is not None:
        return FolderSink(location.path)
    prefix = location.prefix.strip("/")
    store = BucketStores(storage).get(location.bucket, role="output")
    return BucketSink(store, f"{prefix}/" if prefix else "")


def on_this_machine(locations: list[Location]) -> list[Location]:
    """The locations only this machine can reach (what a cluster's workers cannot read)."""
    return [location for location in locations if not location.remote]
