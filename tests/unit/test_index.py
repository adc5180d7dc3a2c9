"""The vector index: exact and approximate backends, their agreement, removal, persistence."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from facereel.core.index import (
    AutoIndex,
    ExactIndex,
    FaissIvfIndex,
    VectorIndex,
    VectorIndexError,
    auto,
    build_index,
    faiss_ivf,
    from_bytes,
    load,
    save,
    to_bytes,
)
from tests.support.synthetic_faces import SyntheticFaces, faces_of, synthetic_faces


@pytest.fixture(scope="module")
def crowd() -> SyntheticFaces:
    return synthetic_faces(2_000, 10)  # 20k faces: IVF trains in about a second


@pytest.fixture(scope="module")
def ivf(crowd: SyntheticFaces) -> FaissIvfIndex:
    return FaissIvfIndex.build(crowd.vectors)


def _queries(crowd: SyntheticFaces, count: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return faces_of(crowd.centres[rng.integers(0, len(crowd.centres), count)], rng)


def test_exact_index_answers_the_true_nearest_with_exact_distances() -> None:
    vectors = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    index = ExactIndex.of(vectors, ids=[10, 20, 30])
    found = index.search([[0.0, 0.4]], k=5)
    assert found.ids.tolist() == [[10, 30, 20, -1, -1]]
    np.testing.assert_allclose(found.distances[0, :3], [0.4, 0.6, np.hypot(3, 0.4)], rtol=1e-6)
    assert np.isinf(found.distances[0, 3:]).all()


def test_approximate_recall_against_exact(crowd: SyntheticFaces, ivf: FaissIvfIndex) -> None:
    queries = _queries(crowd, 300)
    exact = ExactIndex.of(crowd.vectors).search(queries, 10)
    found = ivf.search(queries, 10)
    recall_at_1 = np.mean(found.ids[:, 0] == exact.ids[:, 0])
    assert recall_at_1 >= 0.99, recall_at_1
    hit = found.ids[:, :1] == exact.ids[:, :1]
    np.testing.assert_allclose(found.distances[:, :1][hit], exact.distances[:, :1][hit],
                               rtol=1e-5)


def test_exact_and_approximate_agree_when_every_group_is_scanned(crowd: SyntheticFaces) -> None:
    small = crowd.vectors[:3_000]
    everything = FaissIvfIndex.build(small, nprobe=10_000)
    queries = _queries(crowd, 50, seed=2)
    exact, approximate = ExactIndex.of(small).search(queries, 32), everything.search(queries, 32)
    assert (approximate.ids == exact.ids).mean() > 0.999  # only exact ties may swap
    np.testing.assert_allclose(approximate.distances, exact.distances, rtol=1e-5)


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_save_reload_search_round_trip(kind: str, crowd: SyntheticFaces, ivf: FaissIvfIndex,
                                       tmp_path: Path) -> None:
    index: VectorIndex = ExactIndex.of(crowd.vectors, np.arange(len(crowd.vectors)) * 7) \
        if kind == "exact" else ivf
    queries = _queries(crowd, 40, seed=3)
    before = index.search(queries, 32)
    save(index, tmp_path / "faces.index")
    for reopened in (load(tmp_path / "faces.index"), from_bytes(to_bytes(index))):
        assert type(reopened) is type(index) and len(reopened) == len(index)
        after = reopened.search(queries, 32)
        np.testing.assert_array_equal(after.ids, before.ids)
        np.testing.assert_array_equal(after.distances, before.distances)
    assert not list(tmp_path.glob(".index-*")), "temporary file left behind"


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_removal_forgets(kind: str, crowd: SyntheticFaces) -> None:
    vectors = crowd.vectors[:6_000]
    index: VectorIndex = ExactIndex.of(vectors) if kind == "exact" \
        else FaissIvfIndex.build(vectors)
    gone = np.arange(0, 6_000, 3)
    assert index.remove([*gone.tolist(), 10**9]) == len(gone), "unknown ids are not counted"
    assert len(index) == 4_000
    found = index.search(vectors[gone[:200]], 32)  # the removed faces themselves
    assert not np.isin(found.ids, gone).any()
    assert index.remove(gone) == 0
    reopened = from_bytes(to_bytes(index))
    assert not np.isin(reopened.search(vectors[gone[:200]], 32).ids, gone).any()
    index.add(gone[:5], vectors[gone[:5]])  # a removed id may be used again
    assert index.search(vectors[gone[:5]], 1).ids[:, 0].tolist() == gone[:5].tolist()


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_bad_input_is_refused_and_changes_nothing(kind: str, crowd: SyntheticFaces) -> None:
    index: VectorIndex = ExactIndex.of(crowd.vectors[:2_000]) if kind == "exact" \
        else FaissIvfIndex.build(crowd.vectors[:2_000])
    vector = crowd.vectors[:1]
    for ids, vectors in [([1], vector),  # already held
                         ([5_000, 5_000], crowd.vectors[:2]),  # twice in one call
                         ([-1], vector),
                         ([5_000], vector[:, :64]),
                         ([5_000], np.full_like(vector, np.nan)),
                         ([5_000, 5_001], vector)]:
        with pytest.raises(VectorIndexError):
            index.add(ids, vectors)
    assert len(index) == 2_000
    with pytest.raises(VectorIndexError):
        index.search(vector, 0)
    with pytest.raises(VectorIndexError):
        index.search(vector[:, :10], 3)


def test_exact_search_memory_stays_bounded() -> None:
    vectors = np.random.default_rng(0).normal(size=(200_000, 128)).astype(np.float32)
    index = ExactIndex.of(vectors)
    tracemalloc.start()
    try:
        found = index.search(vectors[:64] + 0.001, 32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found.ids[:, 0].tolist() == list(range(64))
    # the naive way, queries x gallery x 128 floats, would be 6.5 GB here
    assert peak < 64 << 20, peak


def test_build_index_picks_by_size(crowd: SyntheticFaces) -> None:
    assert isinstance(build_index(crowd.vectors[:500], exact_max=1_000), ExactIndex)
    assert isinstance(build_index(crowd.vectors[:5_000], exact_max=1_000), FaissIvfIndex)


def test_auto_index_changes_backend_as_it_grows_and_shrinks(crowd: SyntheticFaces) -> None:
    index = AutoIndex(ExactIndex(128), exact_max=3_000)
    for start in range(0, 4_000, 1_000):
        index.add(np.arange(start, start + 1_000), crowd.vectors[start:start + 1_000])
    assert index.kind == "faiss-ivf" and len(index) == 4_000
    assert index.search(crowd.vectors[3_500:3_510], 1).ids[:, 0].tolist() == list(
        range(3_500, 3_510))
    index.remove(np.arange(3_000))
    assert index.kind == "exact" and len(index) == 1_000
    assert index.search(crowd.vectors[3_500:3_510], 1).ids[:, 0].tolist() == list(
        range(3_500, 3_510))


def test_without_faiss_large_sets_are_searched_exactly(crowd: SyntheticFaces, ivf: FaissIvfIndex,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    saved = to_bytes(ivf)
    monkeypatch.setattr(auto, "faiss_available", lambda: False)
    monkeypatch.setattr(faiss_ivf, "faiss_available", lambda: False)
    assert isinstance(build_index(crowd.vectors[:5_000], exact_max=1_000), ExactIndex)
    reopened = from_bytes(saved)
    assert isinstance(reopened, ExactIndex) and len(reopened) == len(ivf)


def _rewritten(data: bytes, change: dict[str, bytes | None]) -> bytes:
    """The index file with some members replaced (None drops one)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            if change.get(name, b"") is not None:
                target.writestr(name, change.get(name) or source.read(name))
        for name, payload in change.items():
            if name not in source.namelist() and payload is not None:
                target.writestr(name, payload)
    return out.getvalue()


def test_malformed_index_files_are_refused() -> None:
    index = ExactIndex.of(np.eye(4, dtype=np.float32))
    data = to_bytes(index)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        header = json.loads(archive.read("index.json"))
    bigger = {**header, "arrays": {**header["arrays"],
                                   "vectors": {"dtype": "<f4", "shape": [1 << 40, 4]}}}
    liar = {**header, "arrays": {**header["arrays"],
                                 "ids": {"dtype": "<i8", "shape": [5]}}}
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    cases = {
        "not a zip": b"garbage",
        "no header": _rewritten(data, {"index.json": None}),
        "wrong format": _rewritten(data, {"index.json": json.dumps(
            {**header, "format": "other"}).encode()}),
        "unknown kind": _rewritten(data, {"index.json": json.dumps(
            {**header, "kind": "nope"}).encode()}),
        "huge array": _rewritten(data, {"index.json": json.dumps(bigger).encode()}),
        "size lie": _rewritten(data, {"index.json": json.dumps(liar).encode()}),
        "extra member": _rewritten(data, {"extra.npy": b"x"}),
        "object array": _rewritten(data, {"ids.npy": pickled.getvalue()}),
        "truncated": data[: len(data) // 2],
    }
    for case, payload in cases.items():
        with pytest.raises(VectorIndexError):
            from_bytes(payload, case)
    duplicated = ExactIndex(4)
    duplicated._ids = np.zeros(2, dtype=np.int64)  # forge a file with one id twice
    duplicated._vectors = np.eye(4, dtype=np.float32)[:2]
    with pytest.raises(VectorIndexError, match="twice"):
        from_bytes(to_bytes(duplicated))
