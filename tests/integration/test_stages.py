"""Stages and workers in-process on real clips, local buckets and a SQLite queue: idempotency,
stale messages, output failures that must come back, and dead letters."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from facereel.config import Settings
from facereel.pipeline.definition import run_stage
from facereel.pipeline.parts import read_member, split_face_key
from facereel.pipeline.stages import Delivery
from facereel.pipeline.wiring import Ports
from facereel.ports.objectstore import ObjectInfo, ObjectStoreError
from facereel.ports.objectstore.local import LocalObjectStore
from facereel.runtime.watcher import watcher_for
from facereel.runtime.workers import Worker
from tests.support.media_factory import transcode
from tests.support.stages import context_of, ports_of, run_through


class FullDisk(LocalObjectStore):
    """An output bucket on a full disk: every write fails until `fixed`."""

    fixed = False

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None,
                  content_type: str | None = None, *,
                  expect: str | None = None) -> ObjectInfo:
        if not self.fixed:
            raise ObjectStoreError(f"cannot write {key!r}: No space left on device",
                                   "storage_full")
        return super().put_bytes(key, data, metadata, content_type, expect=expect)


@pytest.fixture
def pipeline_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.with_overrides(data_dir=tmp_path, gallery=settings.storage.gallery_path,
                                   metadata_db=tmp_path / "meta.db", max_attempts=3, settle=0.0,
                                   retry_backoff=0.2)


def _upload(ports: Ports, clip: Path, key: str) -> dict[str, str]:
    info = ports.input.put_bytes(key, clip.read_bytes())
    return {"key": key, "etag": info.etag}


def _stage1(ports: Ports) -> list[tuple[str, str, float]]:
    return sorted((i.key, i.etag, i.modified) for i in ports.stage1.list())


def test_every_stage_is_idempotent(pipeline_settings: Settings, clips: dict[str, Path]) -> None:
    ports = ports_of(pipeline_settings)
    context = context_of(pipeline_settings, ports)
    message = _upload(ports, clips["test_7"], "talk.mp4")
    first = run_stage("split", Delivery(message), context)
    stage1 = _stage1(ports)
    assert run_stage("split", Delivery(message, attempt=2), context) == first
    assert [i[0] for i in _stage1(ports)] == [i[0] for i in stage1], "the same part, rewritten"
    assert first == [("recognize", {**message, "windows": 1})]
    assert [key for key, _, _ in stage1] == ["talk/" + message["etag"][:16] + "/part-0000.zip"]
    second = run_stage("recognize", Delivery(first[0][1]), context)
    assert run_stage("recognize", Delivery(first[0][1], attempt=2), context) == second
    (name, body), (remembered, memory) = second
    assert name == "publish" and body["result"]["people"][0]["person"] == "morgan_freeman"
    assert remembered == "remember" and memory["memory"]["tracks"][0]["person"] == \
        "morgan_freeman"
    for attempt in (1, 2):
        assert run_stage("remember", Delivery(memory, attempt), context) == []
    assert [c.video for c in ports.memory.changes(0)] == ["talk.mp4"], "remembered once"
    where = split_face_key(body["result"]["people"][0]["face"])
    assert where is not None and where[0] == stage1[0][0], "the crop is a shot of the part"
    assert read_member(ports.stage1.get_bytes(where[0]), where[1])[:3] == b"\xff\xd8\xff"
    for attempt in (1, 2):
        assert run_stage("publish", Delivery(body, attempt), context) == []
    outputs = sorted(i.key for i in ports.output.list())
    assert outputs == ["talk.csv", "talk.mp4.json", "talk.txt"]
    assert ports.metadata.video_counts() == {"done": 1}
    doc = json.loads(ports.output.get_bytes("talk.mp4.json"))
    assert doc["video"] == "talk.mp4" and doc["people"][0]["person"] == "morgan_freeman"


def test_a_replaced_upload_is_not_processed_twice(pipeline_settings: Settings,
                                                  clips: dict[str, Path]) -> None:
    ports = ports_of(pipeline_settings)
    context = context_of(pipeline_settings, ports)
    old = _upload(ports, clips["test_7"], "clip.mp4")
    new = _upload(ports, clips["test_0"], "clip.mp4")
    assert run_stage("split", Delivery(old), context) == [], "the old content's message is stale"
    run_through(context, "split", new)
    doc = json.loads(ports.output.get_bytes("clip.mp4.json"))
    assert doc["people"][0]["person"] == "president_trump"


def test_a_late_publish_of_replaced_content_is_dropped(pipeline_settings: Settings,
                                                       clips: dict[str, Path]) -> None:
    ports = ports_of(pipeline_settings)
    context = context_of(pipeline_settings, ports)
    watcher = watcher_for(pipeline_settings, ports)
    old = _upload(ports, clips["test_7"], "clip.mp4")
    watcher.submit(old["key"], old["etag"])
    late = run_stage("recognize", Delivery(run_stage("split", Delivery(old), context)[0][1]),
                     context)
    new = _upload(ports, clips["test_0"], "clip.mp4")
    watcher.submit(new["key"], new["etag"])  # the row now describes the new content
    assert run_stage("publish", Delivery(late[0][1]), context) == []
    assert ports.output.head("clip.mp4.json") is None, "nothing published for the old content"


def test_output_failure_goes_back_to_the_queue(pipeline_settings: Settings,
                                               clips: dict[str, Path], tmp_path: Path) -> None:
    ports = ports_of(pipeline_settings)
    full = FullDisk(tmp_path / "buckets" / "output", "output")
    ports.output = full
    watcher = watcher_for(pipeline_settings, ports)
    _upload(ports, clips["test_4"], "depp.mp4")
    assert watcher.poll_once() == 1
    worker = Worker(pipeline_settings, 0, ports)
    for _ in range(3):  # split, recognize, then publish fails on the full disk
        found = worker.next_message()
        assert found is not None
        worker.handle(*found)
    depth = ports.queues["publish"].depth()
    assert (depth.visible, depth.delayed, depth.dead) == (0, 1, 0), "not lost, not dead: later"
    assert ports.metadata.video_counts() == {"recognizing": 1}  # publishing did not land
    assert list(full.list()) == []
    full.fixed = True
    again = ports.queues["publish"].receive(1, wait_s=5.0)  # after the backoff
    assert again and again[0].attempts == 2
    worker.handle("publish", again[0])
    assert ports.metadata.video_counts() == {"done": 1}
    assert sorted(i.key for i in full.list()) == ["depp.csv", "depp.mp4.json", "depp.txt"]


def test_a_stage_that_keeps_failing_is_dead_lettered(pipeline_settings: Settings,
                                                     clips: dict[str, Path],
                                                     tmp_path: Path) -> None:
    ports = ports_of(pipeline_settings)
    ports.output = FullDisk(tmp_path / "buckets" / "output", "output")
    ports.queues["publish"].send({"key": "x.mp4", "etag": "e", "result_key": "missing.json"})
    worker = Worker(pipeline_settings, 0, ports)
    for attempt in range(1, 4):
        message = ports.queues["publish"].receive(1, wait_s=5.0)  # each after its backoff
        assert message and message[0].attempts == attempt
        worker.handle("publish", message[0])
    assert ports.queues["publish"].receive(1, wait_s=1.0) == []
    depth = ports.queues["publish"].depth()
    assert depth.dead == 1 and depth.visible == depth.delayed == depth.in_flight == 0
    assert ports.metadata.get_video("x.mp4").status == "dead"  # type: ignore[union-attr]
    assert ports.queues["publish"].dead_letters()[0].body["key"] == "x.mp4"


def test_messages_left_under_the_old_stage_name_are_still_processed(
        pipeline_settings: Settings, clips: dict[str, Path]) -> None:
    ports = ports_of(pipeline_settings)
    message = _upload(ports, clips["test_7"], "old.mp4")
    context = context_of(pipeline_settings, ports)
    (_, body), = run_stage("split", Delivery(message), context)
    ports.queues["recognise"].send(body)  # queued by a release that spelled it `recognise`
    worker = Worker(pipeline_settings, 0, ports)
    found = worker.next_message()
    assert found is not None and found[0] == "recognise"
    worker.handle(*found)
    assert ports.queues["publish"].depth().visible == 1


def test_watcher_cursor_survives_restarts_and_waits_for_copies(pipeline_settings: Settings,
                                                                clips: dict[str, Path]) -> None:
    settings = pipeline_settings.with_overrides(settle=0.5)
    ports = ports_of(settings)
    folder = settings.data_dir / "buckets" / "input"
    (folder / "old.mp4").write_bytes(clips["test_7"].read_bytes())
    os.utime(folder / "old.mp4", (0, 0))  # copied in long ago, while facereel was down
    with (folder / "copying.mp4").open("wb") as handle:  # another program still writing it
        handle.write(clips["test_0"].read_bytes()[:1000])
        handle.flush()
        assert watcher_for(settings, ports).poll_once() == 1, "only the finished file"
    time.sleep(0.6)
    restarted = watcher_for(settings, ports_of(settings))
    assert restarted.poll_once() == 1, "the finished copy, once settled"
    assert restarted.poll_once() == 0, "the durable cursor remembers what was queued"
    (folder / "old.mp4").write_bytes(clips["test_4"].read_bytes())
    os.utime(folder / "old.mp4", (0, 0))
    assert restarted.poll_once() == 1, "new content under the same name is new work"
    assert ports.queues["split"].depth().visible == 3


def test_inputs_sharing_a_stem_keep_their_own_result(pipeline_settings: Settings,
                                                     clips: dict[str, Path],
                                                     tmp_path: Path) -> None:
    """`x.mp4` and `x.mkv` publish `x.mp4.json` and `x.mkv.json`; the seed files `x.txt` and
    `x.csv` hold the latest published result (the coursework's tools read one name)."""
    ports = ports_of(pipeline_settings)
    context = context_of(pipeline_settings, ports)
    mkv = tmp_path / "x.mkv"
    transcode(clips["test_0"], mkv, seconds=1.5)
    for key, path in (("x.mp4", clips["test_7"]), ("x.mkv", mkv)):
        info = ports.input.put_file(key, path)
        run_through(context, "split", {"key": key, "etag": info.etag})
    people = {key: json.loads(ports.output.get_bytes(f"{key}.json"))["people"][0]["person"]
              for key in ("x.mp4", "x.mkv")}
    assert people == {"x.mp4": "morgan_freeman", "x.mkv": "president_trump"}
    assert ports.output.get_bytes("x.txt") == b"president_trump\n", "the latest published"
    assert ports.metadata.get_video("x.mp4").result_key == "x.mp4.json"  # type: ignore[union-attr]


def test_the_watcher_remembers_only_what_was_delivered(pipeline_settings: Settings,
                                                       clips: dict[str, Path]) -> None:
    """The watcher's `send` is injected (a queue, an OpenFaaS function...): what it did not
    deliver is not marked in the cursor, so a later round (or restart) hands it over again."""
    ports = ports_of(pipeline_settings)
    for name in ("a.mp4", "b.mp4"):
        _upload(ports, clips["test_7"], name)
    sent: list[str] = []

    def send(key: str, etag: str, size: int) -> bool:
        sent.append(key)
        return key == "a.mp4"

    watcher = watcher_for(pipeline_settings, ports, send)
    assert watcher.poll_once() == 1 and watcher.poll_once() == 0
    assert sorted(sent) == ["a.mp4", "b.mp4", "b.mp4"]
    assert set(watcher.cursor.known()) == {"a.mp4"}
    assert ports.queues["split"].depth().visible == 0, "nothing queued: send replaced it"
