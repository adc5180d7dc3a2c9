"""The gallery at scale: matching through the index, and operations on 200k faces."""

from __future__ import annotations

import io
import json
import tracemalloc

import numpy as np
import pytest

from facereel.core import gallery as gallery_module
from facereel.core.gallery import Gallery
from facereel.core.index import ExactIndex, FaissIvfIndex, auto
from facereel.core.match import MatchPolicy, claimant, decide
from tests.support.synthetic_faces import SyntheticFaces, faces_of, synthetic_faces


def _gallery(faces: SyntheticFaces, prefix: str = "p") -> Gallery:
    gallery = Gallery("dlib-resnet", 128)
    names = [f"{prefix}{row // faces.faces}" for row in range(len(faces.vectors))]
    gallery.extend(names, faces.vectors)
    return gallery


@pytest.fixture(scope="module")
def crowd() -> SyntheticFaces:
    return synthetic_faces(2_000, 10, seed=5)


@pytest.fixture
def small_tiers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Index and candidate tiers at a size a unit test can afford (20k faces -> IVF)."""
    monkeypatch.setattr(gallery_module, "FULL_COMPARISON", 500)
    monkeypatch.setattr(auto, "EXACT_MAX", 5_000)


Answer = tuple[str | None, str | None, float]  # person, nearest, median distance


def _decisions(gallery: Gallery, tracks: list[np.ndarray], policy: MatchPolicy) -> list[Answer]:
    return [(d.person, d.nearest, round(d.distance, 5))
            for d in (decide(gallery, list(track), policy) for track in tracks)]


def test_decisions_through_the_index_equal_exact_ones(crowd: SyntheticFaces, small_tiers: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    gallery = _gallery(crowd)
    rng = np.random.default_rng(11)
    known = rng.integers(0, 2_000, 60)
    unknown = synthetic_faces(30, 1, seed=99).centres  # people nobody enrolled
    tracks = [faces_of(np.repeat(crowd.centres[i:i + 1], 5, axis=0), rng) for i in known]
    tracks += [faces_of(np.repeat(c[None], 4, axis=0), rng) for c in unknown]
    # the default policy, and one whose clear-winner band holds most known faces, with a
    # margin that the runner-ups of about half of them miss
    policies = [MatchPolicy(), MatchPolicy(threshold=0.15, clear_slack=0.15, clear_margin=0.5)]
    through_index = [_decisions(gallery, tracks, policy) for policy in policies]
    assert isinstance(gallery.index(), FaissIvfIndex)
    monkeypatch.setattr(gallery_module, "FULL_COMPARISON", 10**9)  # every person, exactly
    exact = [_decisions(gallery, tracks, policy) for policy in policies]
    for approximate, truth in zip(through_index, exact, strict=True):
        assert [d[0] for d in approximate] == [d[0] for d in truth]
        assert approximate[:60] == truth[:60]
        # a stranger's nearest person (shown in results) may come from the approximate
        # search: at times a slightly farther one, never a nearer one than exists
        pairs = list(zip(approximate[60:], truth[60:], strict=True))
        assert all(a[2] >= t[2] for a, t in pairs)
        assert sum(a == t for a, t in pairs) >= 0.8 * len(pairs)
    assert [d[0] for d in exact[0][:60]] == [f"p{i}" for i in known]
    assert all(d[0] is None for d in exact[0][60:])
    band = [d for d in exact[1][:60] if d[2] > 0.15]
    assert any(d[0] is None for d in band) and any(d[0] is not None for d in band)


def test_runner_up_is_found_when_one_person_fills_the_candidates(
        small_tiers: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    gallery = _gallery(synthetic_faces(1_000, 10, seed=8), prefix="other")
    face = gallery.vectors[0] + 0.1
    step = rng.normal(size=128)
    near = face + step * 0.61 / np.linalg.norm(step)  # in the clear-winner band (0.6-0.62)
    gallery.add("crowded", near + rng.normal(scale=0.0005, size=(200, 128)))  # > k vectors
    assert gallery.nearest_people(face[None]).people == ["crowded"], "only one person at k"
    decision = decide(gallery, [face], MatchPolicy())
    assert decision.nearest == "crowded" and np.isfinite(decision.runner_up)
    monkeypatch.setattr(gallery_module, "FULL_COMPARISON", 10**9)
    assert decide(gallery, [face], MatchPolicy()) == decision
    assert decision.person == "crowded", "a clear winner: everyone else is far"
    claim = claimant(gallery, "crowded", face, MatchPolicy(threshold=10.0))
    assert claim is not None and claim.person != "crowded", "the excluded person is skipped"


def test_index_is_kept_until_the_gallery_changes(crowd: SyntheticFaces) -> None:
    gallery = _gallery(SyntheticFaces(crowd.centres[:50], crowd.vectors[:500], 10))
    first = gallery.index()
    assert isinstance(first, ExactIndex) and gallery.index() is first
    gallery.add("new", crowd.vectors[600])
    assert gallery.index() is not first and len(gallery.index()) == 501
    again = gallery.index()
    gallery.names.extend(["late"])  # how BucketGalleryStore appends a segment
    gallery.vectors = np.vstack([gallery.vectors, crowd.vectors[700:701]])
    assert gallery.index() is not again and gallery.people[-1] == "late"


def test_person_distances_keep_their_shape_with_inf_for_far_people(
        crowd: SyntheticFaces, small_tiers: None) -> None:
    gallery = _gallery(crowd)
    distances = gallery.person_distances(crowd.vectors[:3])
    assert distances.shape == (3, 2_000)
    assert distances[0, 0] == 0.0 and np.isinf(distances).sum() > 3 * 1_900
    np.testing.assert_allclose(gallery.distances_to("p7", crowd.vectors[:3]),
                               np.linalg.norm(crowd.vectors[:3, None] - crowd.vectors[None, 70:80],
                                              axis=2).min(axis=1), rtol=1e-6)


def test_operations_on_200k_faces_without_huge_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auto, "EXACT_MAX", 10**6)  # index training is timed in bench/index.py
    faces = synthetic_faces(20_000, 10, seed=2)
    gallery = _gallery(faces)
    size = gallery.vectors.nbytes  # 100 MB
    tracemalloc.start()
    try:
        assert len(gallery.people) == 20_000 and gallery.counts()["p19999"] == 10
        assert gallery.merge(_gallery(faces)) == 0, "importing the same faces adds nothing"
        extra = synthetic_faces(100, 3, seed=4)
        assert gallery.merge(_gallery(extra, prefix="q")) == 300
        assert gallery.remove("p5") == 10 and "p5" not in gallery.counts()
        found = gallery.nearest_people(faces.vectors[100:105])
        assert found.people[int(np.argmin(found.distances[0]))] == "p10"
        data = gallery.to_bytes()
        loaded = Gallery.from_bytes(data, "g.npz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded.names == gallery.names and np.array_equal(loaded.vectors, gallery.vectors)
    assert loaded.names[0] is loaded.names[1], "one string per person, not per face"
    assert peak < 8 * size, peak  # a few copies of the vectors, never queries x faces x dim


def test_file_format_is_unchanged_one_name_per_vector() -> None:
    gallery = Gallery("dlib-resnet", 2)
    gallery.extend(["a", "b", "a"], np.eye(3, 2, dtype=np.float32))
    with np.load(io.BytesIO(gallery.to_bytes()), allow_pickle=False) as archive:
        header = json.loads(bytes(archive["header"]).decode())
    assert header["version"] == 1 and header["names"] == ["a", "b", "a"]
    assert gallery.people == ["a", "b"] and gallery.counts() == {"a": 2, "b": 1}
