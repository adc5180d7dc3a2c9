"""The face memory's one contract (ports/memory): what passes on SQLite must pass on DynamoDB
(moto server), so the remember stage, search and the index writer behave the same on a laptop
and on AWS. Every DynamoDB test uses its own table."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facereel.ports import aws_resources
from facereel.ports.memory import MemoryStore, Shot, TrackDetail, TrackMemory, VideoMemory
from facereel.ports.memory import sqlite as sqlite_memory
from facereel.ports.memory.dynamodb import CHUNK_SHOTS, DynamoMemory
from facereel.ports.memory.sqlite import SqliteMemory
from facereel.ports.metadata.dynamo_schema import FACES_TABLE
from facereel.ports.metadata.dynamodb import make_dynamo
from tests.support.servers import MotoServer


@pytest.fixture(params=["sqlite", "dynamo"])
def memory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryStore]:
    if request.param == "sqlite":
        yield SqliteMemory(tmp_path / "memory.db")
        return
    moto: MotoServer = request.getfixturevalue("moto")
    resource = make_dynamo(moto.endpoint, "us-east-1", moto.access_key, moto.secret_key)
    table = f"faces-{uuid.uuid4().hex[:10]}"
    assert aws_resources.ensure_table(resource.meta.client, table, FACES_TABLE).state == \
        "created"
    yield DynamoMemory(resource, table)
    resource.meta.client.delete_table(TableName=table)


def track(track_id: str, shots: int, seed: int, person: str | None = None) -> TrackMemory:
    vectors = np.random.default_rng(seed).normal(size=(shots, 128)).astype(np.float32)
    return TrackMemory(track_id=track_id, appearances=[(0, 1500), (4000, 4600)],
                       face=f"v/e/part-0000.zip/track{seed:03d}-shot00.jpg",
                       shots=[Shot(500 * n, f"v/e/part-0000.zip/track{seed:03d}-shot{n:02d}.jpg")
                              for n in range(shots)],
                       embeddings=vectors, person=person, nearest=person or "bush",
                       distance=0.41 if person else 0.73,
                       # records made before tracks kept their detail have none
                       detail=None if seed == 2 else TrackDetail(
                           seen=list(range(0, 500 * shots, 250)), spans=[(0, 1500), (4000, 4600)],
                           box=(10, 20, 110, 120), score=0.875))


def video(key: str, etag: str, tracks: list[TrackMemory]) -> VideoMemory:
    return VideoMemory(key, etag, "retinaface", "dlib-5-point", "dlib-resnet", tracks,
                       written=1700000000.5)


def same(a: VideoMemory, b: VideoMemory) -> None:
    assert (a.video, a.etag, a.detector, a.aligner, a.embedder, a.written) == \
        (b.video, b.etag, b.detector, b.aligner, b.embedder, b.written)
    assert len(a.tracks) == len(b.tracks)
    for x, y in zip(a.tracks, b.tracks, strict=True):
        assert (x.track_id, x.appearances, x.face, x.shots, x.person, x.nearest, x.distance,
                x.detail) == (y.track_id, y.appearances, y.face, y.shots, y.person, y.nearest,
                              y.distance, y.detail)
        assert x.embeddings.dtype == np.float32 and np.array_equal(x.embeddings, y.embeddings)


def test_a_record_round_trips_exactly(memory: MemoryStore) -> None:
    long = track("7.1", CHUNK_SHOTS * 2 + 50, 3)  # more shots than one DynamoDB item holds
    stored = video("dir/a b é.mp4", "etag-1", [track("0", 2, 1, "bush"), track("3", 1, 2),
                                                long])
    assert memory.get("dir/a b é.mp4") is None
    assert memory.remember(stored) is True
    found = memory.get("dir/a b é.mp4")
    assert found is not None and found.version == 0
    same(found, stored)
    assert [(s.video, s.etag, s.embedder, s.tracks) for s in memory.videos()] == [
        ("dir/a b é.mp4", "etag-1", "dlib-resnet", 3)]
    assert memory.tracks_of("bush") == [("dir/a b é.mp4", "0")]


def test_a_database_made_before_track_details_is_read_and_written(tmp_path: Path) -> None:
    """A memory.db of the first release (no `detail` column) gets it when opened: its
    records read with no detail, new ones keep theirs."""
    import sqlite3

    old_schema = sqlite_memory.SCHEMA.replace("    detail TEXT,\n", "")
    assert "detail" not in old_schema
    with sqlite3.connect(tmp_path / "memory.db") as db:
        db.executescript(old_schema)
        db.execute("INSERT INTO memory_videos VALUES ('old.mp4', 'e', 0, 1, 0, 'd', 'a', "
                   "'dlib-resnet', 1)")
        db.execute("INSERT INTO memory_tracks VALUES ('old.mp4', 0, '0', NULL, NULL, NULL, "
                   "'[[0, 500]]', '', '[[0, \"\"]]', ?)", (np.zeros(128, "<f4").tobytes(),))
    memory = SqliteMemory(tmp_path / "memory.db")
    found = memory.get("old.mp4")
    assert found is not None and found.tracks[0].detail is None
    stored = video("new.mp4", "e", [track("0", 2, 1)])
    assert memory.remember(stored)
    again = memory.get("new.mp4")
    assert again is not None
    same(again, stored)


def test_the_same_content_adds_nothing_and_new_content_replaces(memory: MemoryStore) -> None:
    first = video("v.mp4", "e1", [track("0", 2, 1), track("1", 3, 2)])
    assert memory.remember(first)
    changes = memory.changes(0)
    assert [c.video for c in changes] == ["v.mp4"]
    assert memory.remember(video("v.mp4", "e1", [track("9", 1, 9)])) is False
    same(memory.get("v.mp4"), first)  # type: ignore[arg-type]
    assert memory.changes(0) == changes, "a repeated remember records no change"
    second = video("v.mp4", "e2", [track("5", 1, 5, "obama")])
    assert memory.remember(second)
    same(memory.get("v.mp4"), second)  # type: ignore[arg-type]
    later = memory.changes(changes[-1].seq)
    assert [c.video for c in later] == ["v.mp4"] and later[0].seq > changes[-1].seq
    assert memory.tracks_of("obama") == [("v.mp4", "5")]


def test_replace_needs_the_version_it_read(memory: MemoryStore) -> None:
    assert memory.remember(video("v.mp4", "e1", [track("0", 2, 1), track("1", 2, 2)]))
    current = memory.get("v.mp4")
    assert current is not None
    current.tracks = current.tracks[1:]
    assert memory.replace(current) is True
    again = memory.get("v.mp4")
    assert again is not None and again.version == 1 and [t.track_id for t in again.tracks] == [
        "1"] and again.written == current.written
    assert memory.replace(current) is False, "read at version 0, now 1"
    assert memory.replace(video("other.mp4", "e", [])) is False, "nothing to replace"


def test_forget_and_the_change_feed(memory: MemoryStore) -> None:
    before = memory.horizon()
    for n in range(3):
        assert memory.remember(video(f"v{n}.mp4", "e", [track("0", 1, n)]))
    assert memory.forget("v1.mp4") is True
    assert memory.forget("v1.mp4") is False and memory.get("v1.mp4") is None
    changes = memory.changes(0)
    assert [c.video for c in changes] == ["v0.mp4", "v1.mp4", "v2.mp4", "v1.mp4"]
    assert all(c.seq > before for c in changes), "changes made after horizon() are above it"
    assert [c.seq for c in changes] == sorted({c.seq for c in changes})
    assert memory.changes(changes[1].seq, limit=1) == [changes[2]]
    assert [s.video for s in memory.videos()] == ["v0.mp4", "v2.mp4"]
    assert memory.prune_changes(changes[1].seq, time.time() - 3600) == 0, "too recent"
    assert memory.prune_changes(changes[1].seq, time.time() + 1) == 2
    assert memory.changes(0) == changes[2:]


def test_concurrent_writers_never_leave_a_mixture(memory: MemoryStore) -> None:
    contents = [video("v.mp4", f"e{n}", [track(str(n), 2, n), track(f"{n}.1", 1, n + 10)])
                for n in range(4)]
    threads = [threading.Thread(target=memory.remember, args=(c,)) for c in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = memory.get("v.mp4")
    assert found is not None
    same(found, next(c for c in contents if c.etag == found.etag))


def test_a_remember_that_fails_half_way_is_completed_by_the_next(
        memory: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host dying between writing a record and announcing it (DynamoDB), or inside the
    transaction (SQLite): remembering the same content again leaves the record and its change
    visible, so the index writer learns of it."""
    def fail(*_: object) -> None:
        raise RuntimeError("the host died")

    where: object = DynamoMemory if isinstance(memory, DynamoMemory) else sqlite_memory
    name = "_feed" if isinstance(memory, DynamoMemory) else "_change"
    stored = video("v.mp4", "e1", [track("0", 2, 1)])
    with monkeypatch.context() as patched:
        patched.setattr(where, name, fail)
        with pytest.raises(RuntimeError):
            memory.remember(stored)
    memory.remember(stored)
    same(memory.get("v.mp4"), stored)  # type: ignore[arg-type]
    assert [c.video for c in memory.changes(0)] == ["v.mp4"]
    assert memory.remember(stored) is False and len(memory.changes(0)) == 1
