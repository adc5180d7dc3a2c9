"""Entries of an input folder that once wedged ingestion for good: a named pipe, a link to
`/dev/zero`, a link to a video outside the data directory, a file name too long for its
metadata file. Each now costs one error record and never stops a round; the files around it
are queued. Plus: a row whose input was deleted after queueing ends, and deleting objects
leaves no empty folders behind."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from facereel.config import Settings
from facereel.pipeline.definition import run_stage
from facereel.pipeline.stages import Delivery
from facereel.ports.objectstore import InvalidKeyError
from facereel.ports.objectstore.local import LocalObjectStore
from facereel.runtime.watcher import watcher_for
from tests.support.stages import context_of, ports_of

LONG = "v" * 240 + ".mp4"  # 244 bytes: fits a file name, not `<name>.json` beside it


@pytest.fixture
def local_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.with_overrides(data_dir=tmp_path / "data",
                                   gallery=settings.storage.gallery_path,
                                   metadata_db=tmp_path / "meta.db", settle=0.0)


def _poll_within(settings: Settings, seconds: float = 20.0) -> int:
    """One watcher round in a thread: a round that blocks (in `open()` of a pipe, reading
    /dev/zero) fails the test instead of hanging it."""
    ports = ports_of(settings)
    found: list[int] = []
    thread = threading.Thread(target=lambda: found.append(watcher_for(settings, ports)
                                                          .poll_once()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "a watcher round blocked"
    return found[0]


def test_hostile_entries_cost_one_error_record_each(local_settings: Settings,
                                                   clips: dict[str, Path], tmp_path: Path,
                                                   security_report: dict[str, Any]) -> None:
    folder = local_settings.data_dir / "buckets" / "input"
    folder.mkdir(parents=True)
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(clips["test_0"].read_bytes())
    os.mkfifo(folder / "a-pipe.mp4")
    (folder / "b-zero.mp4").symlink_to("/dev/zero")
    (folder / "c-outside.mp4").symlink_to(outside)
    (folder / LONG).write_bytes(clips["test_7"].read_bytes())
    (folder / "e-inside.mp4").symlink_to(folder / LONG)  # a link within the bucket is fine
    (folder / "z-last.mp4").write_bytes(clips["test_4"].read_bytes())
    assert _poll_within(local_settings) == 3, "the long name, the inner link, the last file"
    assert _poll_within(local_settings) == 0, "each entry is recorded once"
    ports = ports_of(local_settings)
    codes = {}
    for name in ("a-pipe.mp4", "b-zero.mp4", "c-outside.mp4"):
        doc = json.loads(ports.output.get_bytes(f"{name}.json"))
        codes[name] = (doc["status"], doc["error"]["code"])
    assert set(codes.values()) == {("error", "not_regular_file")}
    assert "outside the bucket" in json.loads(ports.output.get_bytes("c-outside.mp4.json"))[
        "error"]["message"]
    queued = ports.queues["split"].receive(10)
    assert sorted(m.body["key"] for m in queued) == sorted([LONG, "e-inside.mp4", "z-last.mp4"])
    security_report["input folder: pipe, /dev/zero link, outside link, 244-byte name"] = (
        "3 error records, 3 queued, no round blocked")


def test_a_long_name_round_trips_and_a_too_long_one_is_refused(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "bucket")
    info = store.put_bytes(f"dir/{LONG}", b"data", {"source": "camera"})
    assert store.head(f"dir/{LONG}") == info and store.get_bytes(f"dir/{LONG}") == b"data"
    assert [i.key for i in store.list()] == [f"dir/{LONG}"]
    with pytest.raises(InvalidKeyError, match="longer than 255 bytes"):
        store.put_bytes("x" * 256 + ".mp4", b"data")
    with pytest.raises(InvalidKeyError):
        store.put_bytes(".facereel/meta/planted.json", b"{}")  # the store's own folder
    assert sorted(p.name for p in (tmp_path / "bucket").iterdir()) == [".facereel", "dir"]


def test_deleting_leaves_no_empty_folders(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "bucket")
    for n in range(3):
        store.put_bytes(f"web-requests/{n:032x}/photo.jpg", b"jpeg")
    for n in range(3):
        store.delete(f"web-requests/{n:032x}/photo.jpg")
    left = [p for p in (tmp_path / "bucket").rglob("*") if p.is_dir()]
    assert all(p.name in (".facereel", "meta", "tmp") for p in left), left


def test_a_row_whose_input_was_deleted_ends(local_settings: Settings,
                                            clips: dict[str, Path]) -> None:
    ports = ports_of(local_settings)
    context = context_of(local_settings, ports)
    watcher = watcher_for(local_settings, ports)
    info = ports.input.put_file("gone.mp4", clips["test_0"])
    watcher.submit("gone.mp4", info.etag)
    ports.input.delete("gone.mp4")
    (stage, body), = run_stage("split", Delivery({"key": "gone.mp4", "etag": info.etag}),
                               context)
    assert stage == "publish"
    run_stage(stage, Delivery(body), context)
    record = ports.metadata.get_video("gone.mp4")
    assert record is not None and (record.status, record.error_code) == ("error", "not_found")
