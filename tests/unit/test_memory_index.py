"""The face index on synthetic faces: the exact block search answers as brute force does; a
snapshot round-trips; the writer is incremental, and a search adds exactly what the snapshot
lacks (its tail), also when the memory's horizon lags behind (DynamoDB's settle window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facereel.core.index import auto, exact
from facereel.core.types import FloatArray
from facereel.memory import vectors
from facereel.memory.indexer import update_index
from facereel.memory.search import Searcher, tail
from facereel.memory.snapshot import Snapshot, load_snapshot
from facereel.ports.memory import Shot, TrackMemory, VideoMemory
from facereel.ports.memory.sqlite import SqliteMemory
from facereel.ports.objectstore.local import LocalObjectStore

RNG = np.random.default_rng(3)


def unit(rows: int) -> FloatArray:
    found = RNG.normal(size=(rows, 128)).astype(np.float32)
    return np.asarray(found / np.linalg.norm(found, axis=1, keepdims=True), dtype=np.float32)


def record(name: str, faces: FloatArray) -> VideoMemory:
    shots = [Shot(n * 1000, f"{name}/e/part-0000.zip/track000-shot{n:02d}.jpg")
             for n in range(len(faces))]
    return VideoMemory(name, "e", "retinaface", "dlib-5point", "dlib-resnet",
                       [TrackMemory("0", [(0, 1000)], shots[0].crop, shots, faces)],
                       written=1.0)


def test_the_block_search_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exact, "SCAN_ELEMENTS", 5000)  # many small blocks
    data, queries = unit(3000), unit(4)
    index = vectors.new_index(128)
    index.add(np.arange(3000) * 7, data)
    assert index.remove([0, 7, 99999]) == 2
    found = index.search(queries, 10)
    distances = np.linalg.norm(queries[:, None] - data[None, 2:], axis=2)
    assert np.array_equal(found.ids, (np.argsort(distances, axis=1)[:, :10] + 2) * 7)
    assert np.allclose(found.distances, np.sort(distances, axis=1)[:, :10], atol=1e-5)
    again = vectors.index_from_bytes(vectors.index_to_bytes(index), 128)
    assert np.array_equal(again.search(queries, 10).ids, found.ids)
    assert vectors.new_index(128).search(queries, 2).ids.tolist() == [[-1, -1]] * 4


def test_snapshot_round_trip_and_id_blocks() -> None:
    snapshot = Snapshot("dlib-resnet", 128, cursor=5)
    snapshot.add([record("a.mp4", unit(3)), record("b.mp4", unit(2))])
    snapshot.drop("a.mp4")
    snapshot.add([record("c.mp4", unit(1))])
    again = Snapshot.from_bytes(snapshot.to_bytes())
    assert (again.cursor, again.next_id, set(again.videos)) == (5, 6, {"b.mp4", "c.mp4"})
    assert again.videos_of(np.array([0, 3, 4, 5, 6, -1])) == {"b.mp4", "c.mp4"}


def test_the_writer_is_incremental_and_searches_add_the_tail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = SqliteMemory(tmp_path / "memory.db")
    objects = LocalObjectStore(tmp_path / "stage-1")
    faces = {name: unit(3) for name in ("a", "b", "c")}
    memory.remember(record("a.mp4", faces["a"]))
    memory.remember(record("b.mp4", faces["b"]))
    monkeypatch.setattr(memory, "horizon", lambda: 0)  # changes not yet settled
    first = update_index(memory, objects, "dlib-resnet", 128)
    assert first.rebuilt and first.vectors == 6 and first.cursor == 0
    snapshot, _ = load_snapshot(objects)
    assert snapshot is not None and {v for _, v in snapshot.applied} == {"a.mp4", "b.mp4"}
    assert tail(memory, snapshot) == set(), "what the snapshot reflects is not read again"
    memory.remember(record("c.mp4", faces["c"]))
    assert tail(memory, snapshot) == {"c.mp4"}
    searcher = Searcher(memory, objects, "dlib-resnet", 128)
    for name, person in faces.items():
        (match,) = searcher.search(person, 0.5)
        assert match.video == f"{name}.mp4", "from the snapshot (a, b) or its tail (c)"
    memory.forget("a.mp4")
    assert searcher.search(faces["a"], 0.5) == [], "a forgotten video is never answered"
    monkeypatch.undo()
    second = update_index(memory, objects, "dlib-resnet", 128)
    assert not second.rebuilt and second.videos == 2 and second.vectors == 6
    assert second.changed == 3 and second.cursor == memory.horizon()  # a, b, c


def test_the_snapshot_index_turns_approximate_as_it_grows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past EXACT_MAX vectors the memory's index is FAISS's IVF (the ann extra), and its
    snapshot bytes reopen as that index, answering as before."""
    monkeypatch.setattr(auto, "EXACT_MAX", 2000)
    data = unit(6000)
    index = vectors.new_index(128)
    index.add(np.arange(1500), data[:1500])
    assert index.exact
    index.add(np.arange(1500, 6000), data[1500:])
    assert (index.kind, index.exact) == ("faiss-ivf", False)
    found = index.search(data[:50], 1)
    assert (found.ids[:, 0] == np.arange(50)).mean() >= 0.9  # its own vector, nearly always
    again = vectors.index_from_bytes(vectors.index_to_bytes(index), 128)
    assert again.kind == "faiss-ivf"
    assert np.array_equal(again.search(data[:50], 1).ids, found.ids)
