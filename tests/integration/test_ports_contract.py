"""One contract for every backend of each port: what passes on the embedded implementation
must pass on the cloud one, so the pipeline can switch backends without changing behaviour.

ObjectStore: LocalObjectStore, S3ObjectStore on SeaweedFS and on moto. Queue: SqliteQueue,
SqsQueue on moto. MetadataStore: SqliteMetadata, DynamoMetadata on moto (through a resource
and through a low-level client). Servers run on 127.0.0.1 only (see conftest.py); every test
uses its own uniquely named bucket, queue or tables.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config

from facereel.ports import aws_resources
from facereel.ports.metadata import (
    MetadataStore,
    Position,
    VideoPage,
    VideoQuery,
    VideoRecord,
    read_people_json,
)
from facereel.ports.metadata.dynamodb import DynamoMetadata, MetadataError, make_dynamo
from facereel.ports.metadata.sqlite import SqliteMetadata
from facereel.ports.objectstore import (
    InvalidKeyError,
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreError,
    md5_hex,
)
from facereel.ports.objectstore import s3 as s3_store
from facereel.ports.objectstore.local import LocalObjectStore
from facereel.ports.objectstore.s3 import S3ObjectStore, make_s3_client
from facereel.ports.objectstore.s3_events import S3ObjectEvent, parse_s3_event
from facereel.ports.queue import Body, DeadLetter, Queue, QueueDepth
from facereel.ports.queue.sqlite import SqliteQueue
from facereel.ports.queue.sqs import QueueError, SqsQueue, make_sqs_client
from facereel.ports.strangers import Group, StrangerPoint, StrangersConflictError, StrangerState
from facereel.ports.strangers.objects import ObjectStrangerStore
from tests.support import provisioned
from tests.support.servers import MotoServer, SeaweedServer, free_port

QueueFactory = Callable[..., Queue]
EMPTY = QueueDepth(0, 0, 0, 0)
BAD_KEYS = ["../x", "/abs", "a//b", "a\x00b", "a/./b", ""]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def dead_endpoint() -> str:
    """A 127.0.0.1 port nobody listens on: connections are refused at once."""
    return f"http://127.0.0.1:{free_port(set())}"


# ---- fixtures ---------------------------------------------------------------------------
def _s3_store(server: SeaweedServer | MotoServer) -> Iterator[S3ObjectStore]:
    client = make_s3_client(server.endpoint, "us-east-1", server.access_key, server.secret_key)
    store = S3ObjectStore(client, unique("facereel"))
    provisioned.s3_bucket(client, store.bucket)
    yield store
    for info in store.list():  # free the bucket (SeaweedFS gives each bucket a volume)
        store.delete(info.key)
    client.delete_bucket(Bucket=store.bucket)


@pytest.fixture(params=["local", "seaweedfs", "moto"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalObjectStore(tmp_path / "bucket")
    else:
        yield from _s3_store(request.getfixturevalue(
            "seaweed" if request.param == "seaweedfs" else request.param))


@pytest.fixture(params=["seaweedfs", "moto"])
def s3_only(request: pytest.FixtureRequest) -> Iterator[S3ObjectStore]:
    yield from _s3_store(request.getfixturevalue(
        "seaweed" if request.param == "seaweedfs" else request.param))


@pytest.fixture
def moto_sqs(moto: MotoServer) -> Any:
    return make_sqs_client(moto.endpoint, "us-east-1", moto.access_key, moto.secret_key)


@pytest.fixture(params=["sqlite", "sqs"])
def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueFactory]:
    """Builds a fresh queue with the given visibility_s and max_attempts."""
    created: list[SqsQueue] = []

    def build(visibility_s: float = 30.0, max_attempts: int = 5) -> Queue:
        name = unique("facereel")
        if request.param == "sqlite":
            return SqliteQueue(tmp_path / "queue.db", name, visibility_s, max_attempts)
        client = request.getfixturevalue("moto_sqs")
        provisioned.sqs_queue(client, name, visibility_s, max_attempts)
        queue = SqsQueue(client, name, visibility_s, max_attempts)
        created.append(queue)
        return queue

    yield build
    for queue in created:
        for url in (queue.url, queue.dead_url):
            queue.client.delete_queue(QueueUrl=url)


@pytest.fixture(params=["sqlite", "dynamo", "dynamo-client", "dynamo-resource-client"])
def metadata(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    """DynamoMetadata through a resource, a plain client, and a resource's own client."""
    if request.param == "sqlite":
        yield SqliteMetadata(tmp_path / "metadata.db")
        return
    moto: MotoServer = request.getfixturevalue("moto")
    resource = make_dynamo(moto.endpoint, "us-east-1", moto.access_key, moto.secret_key)
    handle = {"dynamo": resource, "dynamo-resource-client": resource.meta.client}.get(
        request.param) or boto3.client(
        "dynamodb", endpoint_url=moto.endpoint, region_name="us-east-1",
        aws_access_key_id=moto.access_key, aws_secret_access_key=moto.secret_key)
    tables = (unique("people"), unique("videos"), unique("windows"), unique("pv"))
    provisioned.dynamo_tables(resource, *tables)
    store = DynamoMetadata(handle, *tables)
    yield store
    for table in tables:
        resource.meta.client.delete_table(TableName=table)


# ---- ObjectStore ------------------------------------------------------------------------
def test_put_get_head_round_trip_with_metadata_and_nested_keys(store: ObjectStore) -> None:
    data = b"\x00\x01 a small video" * 100
    meta = {"camera": "front door", "source": "caf\u00e9 \u2615", "trailing": "x "}
    written = store.put_bytes("a/b/c.mp4", data, meta, content_type="video/mp4")
    expected = {**meta, "content-type": "video/mp4"}
    assert (written.key, written.size, written.etag) == ("a/b/c.mp4", len(data), md5_hex(data))
    assert written.metadata == expected
    assert store.get_bytes("a/b/c.mp4") == data
    head = store.head("a/b/c.mp4")
    assert head is not None
    assert (head.key, head.size, head.etag, head.metadata) == ("a/b/c.mp4", len(data),
                                                              md5_hex(data), expected)
    assert abs(head.modified - time.time()) < 600


def test_plain_put_has_no_content_type_and_empty_objects_work(store: ObjectStore) -> None:
    info = store.put_bytes("empty.bin", b"")
    assert (info.size, info.etag, info.metadata) == (0, md5_hex(b""), {})
    head = store.head("empty.bin")
    assert head is not None and (head.size, head.etag, head.metadata) == (0, md5_hex(b""), {})
    assert store.get_bytes("empty.bin") == b""


def test_overwrite_replaces_content_and_metadata(store: ObjectStore) -> None:
    store.put_bytes("clip.mp4", b"old", {"version": "1"})
    store.put_bytes("clip.mp4", b"new content", {"other": "2"})
    head = store.head("clip.mp4")
    assert head is not None
    assert (head.etag, head.metadata) == (md5_hex(b"new content"), {"other": "2"})
    assert store.get_bytes("clip.mp4") == b"new content"


def test_put_file_and_download(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "source.mp4"
    source.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    written = store.put_file("in/dir/clip 1.mp4", source, {"owner": "ann"}, "video/mp4")
    assert written.etag == md5_hex(source.read_bytes())
    target = tmp_path / "copy.mp4"
    info = store.download("in/dir/clip 1.mp4", target)
    assert target.read_bytes() == source.read_bytes()
    assert (info.size, info.etag) == (source.stat().st_size, written.etag)
    assert info.metadata == {"owner": "ann", "content-type": "video/mp4"}


def test_large_files_go_multipart(s3_only: S3ObjectStore, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store = s3_only
    monkeypatch.setattr(s3_store, "MULTIPART_THRESHOLD", 5 << 20)
    source = tmp_path / "big.mp4"
    source.write_bytes(bytes(range(256)) * (24 << 10))  # 6 MiB
    written = store.put_file("big/clip.mp4", source, {"owner": "ann"}, "video/mp4")
    assert written.etag.endswith("-1") and written.size == 6 << 20  # not an MD5
    assert written.metadata == {"owner": "ann", "content-type": "video/mp4"}
    assert store.download("big/clip.mp4", tmp_path / "back.mp4") == written
    assert (tmp_path / "back.mp4").read_bytes() == source.read_bytes()


def test_list_is_in_key_order_and_filters_by_prefix(store: ObjectStore) -> None:
    keys = ["b.mp4", "a/b/c.mp4", "a-x.mp4", "a/b/d.mp4", "a/c.mp4", "a0.mp4", "\u00e9t\u00e9.mp4"]
    for index, key in enumerate(keys):
        store.put_bytes(key, b"x" * index)
    listed = list(store.list())
    assert [i.key for i in listed] == sorted(keys)
    assert {i.key: (i.size, i.etag) for i in listed} == {
        k: (n, md5_hex(b"x" * n)) for n, k in enumerate(keys)}
    assert [i.key for i in store.list("a/")] == ["a/b/c.mp4", "a/b/d.mp4", "a/c.mp4"]
    assert [i.key for i in store.list("a/b")] == ["a/b/c.mp4", "a/b/d.mp4"]
    assert list(store.list("zzz/")) == []
    unordered = store.list("a", ordered=False)
    assert next(unordered).key.startswith("a"), "a lazy listing yields before it is complete"
    assert sorted([i.key for i in store.list("a", ordered=False)]) == \
        [k for k in sorted(keys) if k.startswith("a")]


def test_delete_and_missing_objects(store: ObjectStore, tmp_path: Path) -> None:
    store.put_bytes("a/b/gone.mp4", b"bytes")
    store.delete("a/b/gone.mp4")
    store.delete("a/b/gone.mp4")  # deleting what is not there is fine
    store.delete("never/existed.mp4")
    assert store.head("a/b/gone.mp4") is None
    assert list(store.list()) == []
    with pytest.raises(ObjectNotFoundError):
        store.get_bytes("a/b/gone.mp4")
    target = tmp_path / "out.mp4"
    with pytest.raises(ObjectNotFoundError):
        store.download("a/b/gone.mp4", target)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_the_grouping_of_strangers_is_written_only_over_the_version_read(
        store: ObjectStore) -> None:
    """StrangerStore (ports/strangers) on each object store: nothing at first, a round trip,
    and a write based on another version than the stored one changes nothing."""
    strangers = ObjectStrangerStore(store, f"{unique('strangers')}/strangers.json")
    assert strangers.load() == (None, "")
    state = StrangerState("dlib-resnet", {"a.mp4": ("etag", 1)})
    point = StrangerPoint("a.mp4", "etag", "7.1", 3, "a/etag/part-0000.zip/t.jpg",
                          np.arange(128, dtype=np.float32))
    state.points[point.ref] = point
    state.groups["3f1c2a9b8d7e"] = Group([point.ref], pinned=True)
    version = strangers.save(state, "")
    loaded, read_at = strangers.load()
    assert loaded is not None and read_at == version
    assert (loaded.groups, loaded.videos) == (state.groups, state.videos)
    assert np.array_equal(loaded.points[point.ref].vector, point.vector)
    with pytest.raises(StrangersConflictError):
        strangers.save(state, "")  # based on none: there is one now
    state.videos["b.mp4"] = ("etag-b", 0)  # (a version is the content's hash)
    newer = strangers.save(state, version)
    with pytest.raises(StrangersConflictError):
        strangers.save(state, version)  # based on a version overwritten since
    assert strangers.load()[1] == newer



class _RecordingClient:
    """Passes calls to the real client and remembers their names."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, list[str]()

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.client, name)


def test_invalid_keys_are_refused_before_any_request(store: ObjectStore, tmp_path: Path) -> None:
    if isinstance(store, S3ObjectStore):
        recorder = _RecordingClient(store.client)
        store.client = recorder
    source = tmp_path / "f.bin"
    source.write_bytes(b"data")
    for key in BAD_KEYS:
        operations: list[Callable[[], object]] = [
            partial(store.put_bytes, key, b"data"), partial(store.put_file, key, source),
            partial(store.get_bytes, key), partial(store.download, key, tmp_path / "d"),
            partial(store.head, key), partial(store.delete, key)]
        for operation in operations:
            with pytest.raises(InvalidKeyError):
                operation()
    if isinstance(store, S3ObjectStore):
        assert recorder.calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bucket", "f.bin"] \
        if isinstance(store, LocalObjectStore) else ["f.bin"]


def test_s3_failures_become_storage_errors(seaweed: SeaweedServer) -> None:
    unreachable = S3ObjectStore(make_s3_client(dead_endpoint(), "us-east-1", "k", "s",
                                               max_attempts=1), "facereel-x")
    with pytest.raises(ObjectStoreError) as caught:
        unreachable.get_bytes("a.mp4")
    assert caught.value.code == "storage_unreachable"
    wrong = make_s3_client(seaweed.endpoint, "us-east-1", seaweed.access_key, "wrong-secret")
    with pytest.raises(ObjectStoreError) as caught:
        S3ObjectStore(wrong, "facereel-x").put_bytes("a.mp4", b"x")
    assert caught.value.code == "storage_denied"
    good = make_s3_client(seaweed.endpoint, "us-east-1", seaweed.access_key, seaweed.secret_key)
    with pytest.raises(ObjectStoreError) as caught:
        S3ObjectStore(good, unique("missing")).get_bytes("a.mp4")
    assert caught.value.code == "storage_no_bucket"
    with pytest.raises(ObjectStoreError) as caught:
        S3ObjectStore(good, "x").put_bytes("a.mp4", b"x", {"bad name": "v"})
    assert caught.value.code == "invalid_metadata"


# ---- Queue ------------------------------------------------------------------------------
def test_send_receive_ack(make_queue: QueueFactory) -> None:
    queue = make_queue()
    message_id = queue.send({"key": "a/b/c.mp4", "etag": "abc"})
    [message] = queue.receive(wait_s=2)
    assert (message.id, message.body, message.attempts) == (
        message_id, {"key": "a/b/c.mp4", "etag": "abc"}, 1)
    assert queue.receive() == []
    queue.ack(message)
    queue.ack(message)  # a second ack of the same delivery is harmless
    assert queue.depth() == EMPTY


def test_receive_batches_and_depth(make_queue: QueueFactory) -> None:
    queue = make_queue()
    for index in range(5):
        queue.send({"n": index})
    queue.send({"n": "later"}, delay_s=60)
    assert queue.depth() == QueueDepth(5, 0, 1, 0)
    got = queue.receive(max_messages=3, wait_s=2)
    assert len(got) == 3
    assert queue.depth() == QueueDepth(2, 3, 1, 0)
    got += queue.receive(max_messages=10, wait_s=2)
    assert sorted(m.body["n"] for m in got) == [0, 1, 2, 3, 4]


def test_visibility_timeout_expiry_redelivers(make_queue: QueueFactory) -> None:
    queue = make_queue(visibility_s=2)
    queue.send({"key": "v.mp4"})
    [first] = queue.receive(wait_s=2)
    assert queue.receive() == []  # hidden while in flight
    [again] = queue.receive(wait_s=5)
    assert (again.id, again.attempts) == (first.id, 2)
    assert again.receipt != first.receipt
    queue.ack(again)
    assert queue.depth() == EMPTY


def test_retry_hides_for_the_delay_then_redelivers(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.send({"key": "r.mp4"})
    [first] = queue.receive(wait_s=2)
    queue.retry(first, 2)
    assert queue.receive() == []
    depth = queue.depth()
    assert (depth.visible, depth.in_flight + depth.delayed) == (0, 1)  # SQS: in flight
    [again] = queue.receive(wait_s=5)
    assert (again.id, again.attempts) == (first.id, 2)


def test_extend_keeps_a_message_hidden(make_queue: QueueFactory) -> None:
    queue = make_queue(visibility_s=2)
    queue.send({"key": "slow.mp4"})
    [message] = queue.receive(wait_s=2)
    queue.extend(message, 30)
    time.sleep(2.5)
    assert queue.receive() == []
    queue.ack(message)
    assert queue.depth() == EMPTY


def test_dead_letters_after_max_attempts(make_queue: QueueFactory) -> None:
    queue = make_queue(visibility_s=0, max_attempts=2)
    queue.send({"key": "poison.mp4"})
    attempts = [m.attempts for _ in range(2) for m in queue.receive(wait_s=2)]
    assert attempts == [1, 2]
    assert queue.receive(wait_s=0.5) == []  # a third delivery would exceed max_attempts
    assert queue.depth() == QueueDepth(0, 0, 0, 1)
    [letter] = queue.dead_letters()
    assert (letter.body, letter.attempts) == ({"key": "poison.mp4"}, 2)
    assert queue.dead_letters() == [letter]  # peeking does not consume


def test_redrive_sends_the_chosen_dead_letters_back(make_queue: QueueFactory) -> None:
    queue = make_queue(visibility_s=0, max_attempts=1)
    for key in ("a.mp4", "b.mp4", "c.mp4"):
        queue.send({"key": key})
    assert len(queue.receive(max_messages=3, wait_s=2)) == 3  # the only delivery each gets
    assert queue.receive(wait_s=0.5) == []
    assert sorted(d.body["key"] for d in queue.dead_letters()) == ["a.mp4", "b.mp4", "c.mp4"]

    def choose(letter: DeadLetter) -> Body | None:
        return {**letter.body, "again": True} if letter.body["key"] != "b.mp4" else None

    sent = queue.redrive(choose)
    assert sorted(d.body["key"] for d in sent) == ["a.mp4", "c.mp4"]
    assert [d.body for d in queue.dead_letters()] == [{"key": "b.mp4"}]
    assert queue.depth() == QueueDepth(2, 0, 0, 1)
    again = queue.receive(max_messages=3, wait_s=2)
    assert sorted((m.body["key"], m.body["again"], m.attempts) for m in again) == [
        ("a.mp4", True, 1), ("c.mp4", True, 1)]  # a new message: its deliveries start over
    for message in again:
        queue.ack(message)
    assert queue.redrive(lambda letter: None) == []
    assert [d.body for d in queue.redrive(lambda letter: letter.body)] == [{"key": "b.mp4"}]
    assert queue.depth() == QueueDepth(1, 0, 0, 0)


def test_ack_with_an_outdated_receipt_is_ignored(make_queue: QueueFactory) -> None:
    queue = make_queue(visibility_s=0)
    queue.send({"key": "twice.mp4"})
    [first] = queue.receive(wait_s=2)
    [second] = queue.receive(wait_s=2)
    assert second.id == first.id and second.receipt != first.receipt
    queue.ack(first)
    queue.retry(first, 300)
    queue.extend(first, 300)
    [third] = queue.receive(wait_s=2)  # still there and still visible
    assert (third.id, third.attempts) == (first.id, 3)
    queue.ack(third)
    assert queue.depth() == EMPTY


def test_sqs_queue_from_url_and_errors(moto_sqs: Any) -> None:
    name = unique("facereel")
    provisioned.sqs_queue(moto_sqs, name, visibility_s=5, max_attempts=3)
    queue = SqsQueue(moto_sqs, name, visibility_s=5, max_attempts=3)
    again = SqsQueue.from_url(moto_sqs, queue.url)
    assert (again.name, again.dead_url, again.max_attempts) == (queue.name, queue.dead_url, 3)
    again.send({"n": 1})
    assert queue.depth().visible == 1
    with pytest.raises(QueueError) as caught:
        SqsQueue(moto_sqs, unique("missing"))
    assert caught.value.code == "queue_not_found"
    assert "facereel provision" in caught.value.message
    dead = make_sqs_client(dead_endpoint(), "us-east-1", "k", "s", max_attempts=1)
    with pytest.raises(QueueError) as caught:
        SqsQueue(dead, "facereel-x")
    assert caught.value.code == "queue_unreachable"


# ---- S3 -> SQS notifications ------------------------------------------------------------
def test_s3_upload_notifies_the_queue(moto: MotoServer, moto_sqs: Any) -> None:
    s3 = make_s3_client(moto.endpoint, "us-east-1", moto.access_key, moto.secret_key)
    store = S3ObjectStore(s3, unique("facereel-in"))
    provisioned.s3_bucket(s3, store.bucket)
    name = unique("facereel-events")
    provisioned.sqs_queue(moto_sqs, name)
    queue = SqsQueue(moto_sqs, name)
    arn = aws_resources.allow_bucket(moto_sqs, queue.url, store.bucket)
    assert aws_resources.ensure_notification(s3, store.bucket, arn).state == "created"
    assert aws_resources.ensure_notification(s3, store.bucket, arn).state == "exists"
    key = "uploads/my clip \u00e9t\u00e9+1.mp4"
    data = b"fake video bytes"
    store.put_bytes(key, data)
    events: list[S3ObjectEvent] = []
    deadline = time.monotonic() + 10
    while not events and time.monotonic() < deadline:
        for message in queue.receive(max_messages=10, wait_s=1):
            events += parse_s3_event(message.body)  # the s3:TestEvent parses to []
            queue.ack(message)
    assert events == [S3ObjectEvent(store.bucket, key, md5_hex(data), len(data))]


def test_parse_s3_event_ignores_what_is_not_a_created_object() -> None:
    assert parse_s3_event({"Service": "Amazon S3", "Event": "s3:TestEvent"}) == []
    assert parse_s3_event({"key": "a.mp4"}) == []
    assert parse_s3_event({"Records": "nope"}) == []
    removed = {"eventName": "ObjectRemoved:Delete",
               "s3": {"bucket": {"name": "b"}, "object": {"key": "a.mp4"}}}
    created = {"eventName": "ObjectCreated:Put",
               "s3": {"bucket": {"name": "b"}, "object": {"key": "a+b%2Fc.mp4", "size": 3,
                                                          "eTag": '"abc"'}}}
    assert parse_s3_event({"Records": [removed, created, 7]}) == [
        S3ObjectEvent("b", "a b/c.mp4", "abc", 3)]


# ---- MetadataStore ----------------------------------------------------------------------
PEOPLE = [{"id": 1, "name": "mr_bean", "major": "lawyer", "year": "freshmen"},
          {"id": 2, "name": "floki", "major": "history", "year": "junior", "score": 0.25,
           "tags": ["viking", "boat"], "extra": {"height": 1.85, "seen": True, "note": None}}]


def test_people_round_trip(metadata: MetadataStore) -> None:
    assert metadata.put_people(PEOPLE) == 2
    assert metadata.get_person("mr_bean") == PEOPLE[0]
    assert metadata.get_person("floki") == PEOPLE[1]
    assert metadata.get_person("nobody") is None
    assert metadata.list_people() == sorted(PEOPLE, key=lambda r: str(r["name"]))
    metadata.put_people([{**PEOPLE[0], "major": "comedy"}, {**PEOPLE[0], "major": "acting"}])
    assert metadata.get_person("mr_bean") == {**PEOPLE[0], "major": "acting"}
    assert metadata.delete_person("floki") is True
    assert metadata.delete_person("floki") is False
    assert [r["name"] for r in metadata.list_people()] == ["mr_bean"]


def test_people_from_the_coursework_file(metadata: MetadataStore, cse546: Path) -> None:
    records = read_people_json(cse546 / "student_data.json")
    assert metadata.put_people(records) == len(records)
    assert metadata.get_person("mr_bean") == {"id": 1, "name": "mr_bean", "major": "lawyer",
                                              "year": "freshmen"}
    assert metadata.list_people() == sorted(records, key=lambda r: str(r["name"]))


def test_video_records(metadata: MetadataStore) -> None:
    records = [VideoRecord("in/a.mp4", "e1", "done", 1700000000.25, "a.json", ["floki"]),
               VideoRecord("in/b c.mp4", "e2", "error", 1700000005.5, "b c.json", [],
                           "media_error", "not a video"),
               VideoRecord("in/d.mp4", "e3", "queued", 1700000002.0)]
    for record in records:
        metadata.put_video(record)
    assert metadata.get_video("in/a.mp4") == records[0]
    assert metadata.get_video("in/b c.mp4") == records[1]
    assert metadata.get_video("missing.mp4") is None
    assert keys(metadata, VideoQuery()) == ["in/b c.mp4", "in/d.mp4", "in/a.mp4"]
    assert metadata.list_videos(VideoQuery(limit=1)).records == [records[1]]
    assert metadata.list_videos(VideoQuery(("done",))) == VideoPage([records[0]])
    assert metadata.video_counts() == {"done": 1, "error": 1, "queued": 1}
    metadata.put_video(VideoRecord("in/d.mp4", "e3", "done", 1700000009.0, "d.json", ["x"]))
    assert metadata.video_counts() == {"done": 2, "error": 1}
    assert keys(metadata, VideoQuery(("done",))) == ["in/d.mp4", "in/a.mp4"]


def test_dynamo_failures_become_metadata_errors(moto: MotoServer) -> None:
    resource = make_dynamo(moto.endpoint, "us-east-1", moto.access_key, moto.secret_key)
    missing = DynamoMetadata(resource, unique("people"), unique("videos"))
    with pytest.raises(MetadataError) as caught:
        missing.get_person("floki")
    assert caught.value.code == "metadata_missing_table"
    assert "facereel provision" in caught.value.message
    dead = boto3.resource("dynamodb", endpoint_url=dead_endpoint(), region_name="us-east-1",
                          aws_access_key_id="k", aws_secret_access_key="s",
                          config=Config(retries={"max_attempts": 1}))
    with pytest.raises(MetadataError) as caught:
        DynamoMetadata(dead, "people", "videos").video_counts()
    assert caught.value.code == "metadata_unreachable"



# ---- MetadataStore listings -----------------------------------------------------------------
T0 = 1700000000.0
LIBRARY = [  # key, status, seconds after T0, the people its row names
    ("a.mp4", "done", 10, ["floki", "mr_bean"]),
    ("b.mp4", "done", 20, ["floki"]),
    ("c.mp4", "error", 30, []),
    ("d.mp4", "queued", 40, []),
    ("e.mp4", "done", 50, ["mr_bean"]),
    ("f.mp4", "dead", 60, []),
    ("g.mp4", "done", 60, ["floki"]),  # the same time as f: listed by key, descending
    ("h.mp4", "processing", 70, []),
    ("i.mp4", "done", 80, ["floki"]),
    ("j.mp4", "recognizing", 90, []),
    ("k.mp4", "done", 100, ["floki", "president_biden"]),
]
NEWEST_FIRST = [row[0] for row in sorted(LIBRARY, key=lambda r: (r[2], r[0]), reverse=True)]


def stock(metadata: MetadataStore) -> None:
    for key, status, at, people in LIBRARY:
        published = f"{key}.json" if status in ("done", "error") else ""
        metadata.put_video(VideoRecord(key, f"etag-{key}", status, T0 + at, published, people))


def keys(metadata: MetadataStore, query: VideoQuery) -> list[str]:
    return [r.key for r in metadata.list_videos(query).records]


def pages(metadata: MetadataStore, query: VideoQuery) -> list[list[str]]:
    """Every page of a listing, following `next` until it is None."""
    found, after = [], query.after
    for _ in range(100):
        page = metadata.list_videos(replace(query, after=after))
        found.append([r.key for r in page.records])
        if page.next is None:
            return found
        after = page.next
    raise AssertionError("a listing that never ends")


def flat(listing: list[list[str]]) -> list[str]:
    return [key for page in listing for key in page]


def test_a_listing_pages_newest_first_with_ties_by_key(metadata: MetadataStore) -> None:
    stock(metadata)
    for size in (1, 3, 4, 11, 50):
        listing = pages(metadata, VideoQuery(limit=size))
        assert flat(listing) == NEWEST_FIRST, size
        assert [len(page) for page in listing[:-1]] == [size] * (len(listing) - 1)
    first = metadata.list_videos(VideoQuery(limit=3))
    assert first.next == Position(T0 + 80, "i.mp4")
    assert metadata.list_videos(VideoQuery(limit=11)).next is None
    assert len(metadata.list_videos(VideoQuery(limit=0)).records) == 1  # at least one


@pytest.mark.parametrize(("query", "wanted"), [
    (VideoQuery(("done",)), lambda status, at, people: status == "done"),
    (VideoQuery(("done", "error")), lambda status, at, people: status in ("done", "error")),
    (VideoQuery(("dead", "queued", "recognizing")),
     lambda status, at, people: status in ("dead", "queued", "recognizing")),
    (VideoQuery(person="floki"), lambda status, at, people: "floki" in people),
    (VideoQuery(person="floki", since=T0 + 20, until=T0 + 80),
     lambda status, at, people: "floki" in people and 20 <= at <= 80),
    (VideoQuery(("done",), since=T0 + 60), lambda status, at, people: status == "done"
     and at >= 60),
    (VideoQuery(until=T0 + 30), lambda status, at, people: at <= 30),
    (VideoQuery(since=T0 + 60, until=T0 + 60), lambda status, at, people: at == 60),
    (VideoQuery(since=T0 + 70, until=T0 + 50), lambda status, at, people: False),
    (VideoQuery(person="floki", since=T0 + 70, until=T0 + 50),
     lambda status, at, people: False),
    (VideoQuery(("error",), person="floki"), lambda status, at, people: False),
    (VideoQuery(person="nobody"), lambda status, at, people: False),
])
def test_listing_filters(metadata: MetadataStore, query: VideoQuery,
                         wanted: Callable[[str, float, list[str]], bool]) -> None:
    stock(metadata)
    rows = {key: (status, at, people) for key, status, at, people in LIBRARY}
    expected = [key for key in NEWEST_FIRST if wanted(*rows[key])]
    for size in (2, 50):
        assert flat(pages(metadata, replace(query, limit=size))) == expected, size


def test_the_person_filter_follows_each_rows_latest_write(metadata: MetadataStore) -> None:
    stock(metadata)
    metadata.put_video(VideoRecord("k.mp4", "etag-2", "queued", T0 + 110))  # uploaded again
    assert keys(metadata, VideoQuery(person="floki")) == ["i.mp4", "g.mp4", "b.mp4", "a.mp4"]
    assert keys(metadata, VideoQuery(person="president_biden")) == []
    metadata.put_video(VideoRecord("k.mp4", "etag-2", "done", T0 + 120, "k.json", ["mr_bean"]))
    assert keys(metadata, VideoQuery(person="mr_bean")) == ["k.mp4", "e.mp4", "a.mp4"]
    assert keys(metadata, VideoQuery(person="floki", limit=1)) == ["i.mp4"]
    assert keys(metadata, VideoQuery(person="mr_bean", since=T0 + 115)) == ["k.mp4"]


@pytest.mark.parametrize("person", [None, "floki"])
def test_a_listing_is_stable_under_inserts(metadata: MetadataStore, person: str | None) -> None:
    stock(metadata)
    first = metadata.list_videos(VideoQuery(person=person, limit=2))
    for n in range(4):  # newer rows arrive between two pages
        metadata.put_video(VideoRecord(f"new-{n}.mp4", "x", "done", time.time(), "", ["floki"]))
    rest = pages(metadata, VideoQuery(person=person, limit=2, after=first.next))
    expected = [k for k in NEWEST_FIRST
                if person is None or person in next(r[3] for r in LIBRARY if r[0] == k)]
    assert [r.key for r in first.records] + flat(rest) == expected


def test_sqlite_finds_by_person_the_rows_written_before_its_person_index(tmp_path: Path) -> None:
    """A database of an earlier release: rows with people, no person_videos table."""
    old = sqlite3.connect(tmp_path / "facereel.db")
    old.execute("CREATE TABLE videos (key TEXT PRIMARY KEY, status TEXT NOT NULL, "
                "updated REAL NOT NULL, record TEXT NOT NULL)")
    for key, status, at, people in LIBRARY:
        record = VideoRecord(key, "e", status, T0 + at, "", people)
        old.execute("INSERT INTO videos VALUES (?, ?, ?, ?)",
                    (key, status, record.updated, json.dumps(record.to_item())))
    old.commit()
    old.close()
    metadata = SqliteMetadata(tmp_path / "facereel.db")
    assert keys(metadata, VideoQuery(person="floki")) == ["k.mp4", "i.mp4", "g.mp4", "b.mp4",
                                                          "a.mp4"]
    assert SqliteMetadata(tmp_path / "facereel.db").list_videos(  # indexed once, not twice
        VideoQuery(person="mr_bean")).records == metadata.list_videos(
        VideoQuery(person="mr_bean")).records
