"""The contract of what concurrent hosts rely on, over every backend: conditional writes and
versioned reads (ObjectStore), the atomic window count (MetadataStore), and the gallery port
(two hosts, one enrols, the other sees it within the stated staleness; concurrent enrolments
are all kept)."""

from __future__ import annotations

import multiprocessing as mp
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facereel.core.gallery import Gallery
from facereel.ports.gallery import GalleryCache, GalleryStore
from facereel.ports.gallery.bucket import BucketGalleryStore
from facereel.ports.gallery.file import FileGalleryStore
from facereel.ports.metadata import MetadataStore
from facereel.ports.metadata.dynamodb import make_dynamo
from facereel.ports.metadata.sqlite import SqliteMetadata
from facereel.ports.objectstore import ObjectStore, PreconditionFailedError, md5_hex
from facereel.ports.objectstore.local import LocalObjectStore
from facereel.ports.objectstore.s3 import S3ObjectStore, make_s3_client
from tests.support import provisioned
from tests.support.servers import MotoServer, SeaweedServer

EMBEDDER, DIM = "dlib-resnet", 128


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _s3(server: SeaweedServer | MotoServer) -> Iterator[S3ObjectStore]:
    client = make_s3_client(server.endpoint, "us-east-1", server.access_key, server.secret_key)
    store = S3ObjectStore(client, unique("facereel"))
    provisioned.s3_bucket(client, store.bucket)
    yield store
    for info in store.list():
        store.delete(info.key)
    client.delete_bucket(Bucket=store.bucket)


@pytest.fixture(params=["local", "seaweedfs", "moto"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalObjectStore(tmp_path / "bucket")
        return
    yield from _s3(request.getfixturevalue("seaweed" if request.param == "seaweedfs"
                                           else "moto"))


@dataclass(frozen=True)
class GallerySpec:
    """Where a gallery lives, so another process can open it too."""

    kind: str  # file | local | s3
    location: str = ""  # the file, or the bucket folder
    endpoint: str = ""
    keys: tuple[str, str] = ("", "")
    bucket: str = ""

    def open(self) -> GalleryStore:
        if self.kind == "file":
            return FileGalleryStore(Path(self.location), EMBEDDER, DIM)
        if self.kind == "local":
            return BucketGalleryStore(LocalObjectStore(Path(self.location)), EMBEDDER, DIM)
        client = make_s3_client(self.endpoint, "us-east-1", *self.keys)
        return BucketGalleryStore(S3ObjectStore(client, self.bucket), EMBEDDER, DIM)


@pytest.fixture(params=["file", "local", "seaweedfs", "moto"])
def gallery_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GallerySpec]:
    if request.param == "file":
        yield GallerySpec("file", str(tmp_path / "gallery.npz"))
    elif request.param == "local":
        yield GallerySpec("local", str(tmp_path / "bucket"))
    else:
        server = request.getfixturevalue("seaweed" if request.param == "seaweedfs" else "moto")
        for s3 in _s3(server):
            yield GallerySpec("s3", endpoint=server.endpoint,
                              keys=(server.access_key, server.secret_key), bucket=s3.bucket)


@pytest.fixture
def galleries(gallery_spec: GallerySpec) -> tuple[GalleryStore, GalleryStore]:
    """Two hosts' views of one gallery (separate objects: no shared cache)."""
    return gallery_spec.open(), gallery_spec.open()


def vector(seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.random.default_rng(seed).normal(size=(1, DIM)).astype(np.float32)


# ---- conditional writes and versioned reads --------------------------------------------
def test_conditional_writes_never_lose_a_change(store: ObjectStore) -> None:
    first = store.put_bytes("state.json", b"v1", expect="")
    with pytest.raises(PreconditionFailedError):
        store.put_bytes("state.json", b"again", expect="")  # it exists now
    second = store.put_bytes("state.json", b"v2", expect=first.etag)
    with pytest.raises(PreconditionFailedError):
        store.put_bytes("state.json", b"stale", expect=first.etag)  # based on v1
    data, info = store.fetch("state.json")
    assert (data, info.etag) == (b"v2", second.etag) and info.etag == md5_hex(b"v2")


def test_concurrent_conditional_increments_all_land(store: ObjectStore) -> None:
    store.put_bytes("count", b"0", expect="")

    def increment() -> None:
        while True:
            data, info = store.fetch("count")
            try:
                store.put_bytes("count", str(int(data) + 1).encode(), expect=info.etag)
                return
            except PreconditionFailedError:
                continue

    threads = [threading.Thread(target=increment) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get_bytes("count") == b"6"


# ---- the join of windows ----------------------------------------------------------------
@pytest.fixture(params=["sqlite", "dynamo"])
def metadata(request: pytest.FixtureRequest, tmp_path: Path) -> MetadataStore:
    if request.param == "sqlite":
        return SqliteMetadata(tmp_path / "metadata.db")
    moto: MotoServer = request.getfixturevalue("moto")
    resource = make_dynamo(moto.endpoint, "us-east-1", moto.access_key, moto.secret_key)
    return provisioned.dynamo_tables(resource, unique("p"), unique("v"), unique("w"),
                                   unique("pv"))


def test_windows_are_counted_once_each_and_atomically(metadata: MetadataStore) -> None:
    assert metadata.mark_window("long.mp4", "e1", 2) == (1, True)
    assert metadata.mark_window("long.mp4", "e1", 2) == (1, False), "marking twice counts once"
    assert metadata.mark_window("long.mp4", "e2", 0) == (1, True), "other content, own count"
    results: list[tuple[int, bool]] = []
    threads = [threading.Thread(target=lambda n=n: results.append(
        metadata.mark_window("long.mp4", "e1", n))) for n in (0, 1, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(count for count, _ in results) == [2, 3, 4, 5], "no count seen twice"
    assert all(added for _, added in results)


# ---- the gallery port -------------------------------------------------------------------
def test_a_new_gallery_is_empty_then_versioned(galleries: tuple[GalleryStore, ...]) -> None:
    host, _ = galleries
    empty = host.load()
    assert (empty.version, len(empty.gallery), host.version()) == ("", 0, "")
    def enrol(gallery: Gallery) -> int:
        gallery.add("ada", vector(1))
        return len(gallery)

    added, snapshot = host.update(enrol)
    assert added == 1 and snapshot.version == host.version() != ""
    assert host.load().gallery.counts() == {"ada": 1}


def test_a_second_host_sees_an_enrolment_within_the_staleness(
        galleries: tuple[GalleryStore, GalleryStore]) -> None:
    writer, reader = galleries
    now = [0.0]
    cache = GalleryCache(reader, refresh_s=5.0, clock=lambda: now[0])
    assert cache.current().people == []
    writer.update(lambda g: g.add("ada", vector(1)))
    now[0] = 4.9
    assert cache.current().people == [], "not looked again before the stated staleness"
    now[0] = 5.0
    assert cache.current().people == ["ada"], "seen once the staleness has passed"
    version = reader.version()
    now[0] = 10.0
    assert cache.current().people == ["ada"] and reader.version() == version


def _enrol_in_process(spec: GallerySpec, name: str) -> None:
    spec.open().update(lambda g: g.add(name, vector(len(name))))


def test_concurrent_enrolments_from_several_processes_are_all_kept(
        galleries: tuple[GalleryStore, GalleryStore], gallery_spec: GallerySpec) -> None:
    host, _ = galleries
    host.update(lambda g: g.add("first", vector(0)))
    context = mp.get_context("spawn")
    names = [f"person-{n}" for n in range(6)]
    workers = [context.Process(target=_enrol_in_process, args=(gallery_spec, name))
               for name in names]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    assert sorted(host.load().gallery.people) == sorted(["first", *names])


def test_gallery_content_survives_the_round_trip(galleries: tuple[GalleryStore, ...]) -> None:
    host, other = galleries
    vectors = np.vstack([vector(n) for n in range(3)])
    host.update(lambda g: g.add("bob", vectors))
    loaded: Gallery = other.load().gallery
    assert loaded.names == ["bob"] * 3 and np.array_equal(loaded.vectors, vectors)
    removed, _ = other.update(lambda g: g.remove("bob"))
    assert removed == 3 and host.load().gallery.people == []
