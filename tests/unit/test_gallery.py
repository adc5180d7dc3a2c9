from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from facereel.core.gallery import Gallery
from facereel.core.gallery_io import read_encoding_pickle, read_gallery_file, read_torch_list
from facereel.errors import GalleryError, UnsafePickleError


def _vectors(count: int, dim: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(count, dim)).astype(np.float32) * 0.1


def test_save_load_round_trip_keeps_names_vectors_and_embedder(tmp_path: Path) -> None:
    gallery = Gallery("dlib-resnet", 128)
    gallery.add("ada", _vectors(2))
    gallery.add("bob", _vectors(1, seed=1))
    path = tmp_path / "sub" / "gallery.npz"
    gallery.save(path)

    loaded = Gallery.load(path)
    assert loaded.embedder == "dlib-resnet"
    assert loaded.people == ["ada", "bob"]
    assert loaded.counts() == {"ada": 2, "bob": 1}
    np.testing.assert_array_equal(loaded.vectors, gallery.vectors)
    assert not list(path.parent.glob(".gallery-*")), "temporary file left behind"


def test_person_distances_use_each_persons_nearest_vector() -> None:
    gallery = Gallery("m", 2)
    gallery.add("a", np.array([[0.0, 0.0], [10.0, 0.0]], dtype=np.float32))
    gallery.add("b", np.array([[0.0, 3.0]], dtype=np.float32))
    distances = gallery.person_distances(np.array([[9.0, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(distances, [[1.0, np.hypot(9, 3)]], rtol=1e-6)


def test_mixing_embedders_or_dimensions_is_refused() -> None:
    gallery = Gallery("dlib-resnet", 128)
    with pytest.raises(GalleryError) as caught:
        gallery.add("x", _vectors(1), embedder="facenet")
    assert caught.value.code == "embedder_mismatch"
    with pytest.raises(GalleryError):
        gallery.add("x", _vectors(1, dim=512))
    with pytest.raises(GalleryError):
        gallery.add("x", np.full((1, 128), np.nan, dtype=np.float32))


def test_remove_and_without(tmp_path: Path) -> None:
    gallery = Gallery("m", 128)
    gallery.add("a", _vectors(2))
    gallery.add("b", _vectors(1, seed=3))
    assert gallery.without("a").people == ["b"]
    assert gallery.people == ["a", "b"], "without() must not change the original"
    assert gallery.remove("a") == 2
    assert gallery.people == ["b"]


def test_not_a_gallery_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "g.npz"
    bogus.write_bytes(b"garbage")
    with pytest.raises(GalleryError, match="not a facereel gallery"):
        Gallery.load(bogus)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "encoding"
    evil.write_bytes(pickle.dumps({"name": ["x"], "encoding": [_Exploit(marker)]}))
    with pytest.raises(UnsafePickleError) as caught:
        read_encoding_pickle(evil)
    assert "system" in caught.value.message
    assert caught.value.code == "unsafe_pickle"
    assert not marker.exists(), "the pickle's payload ran"


def test_plain_encoding_pickle_is_read(tmp_path: Path) -> None:
    path = tmp_path / "encoding"
    vectors = _vectors(2).astype(np.float64)
    path.write_bytes(pickle.dumps({"name": ["a", "b"], "encoding": list(vectors)}, protocol=3))
    names, read = read_encoding_pickle(path)
    assert names == ["a", "b"]
    np.testing.assert_allclose(read, vectors, rtol=1e-6)


def test_torch_list_with_foreign_globals_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pickle.dump(_Exploit(tmp_path / "pwned"), buffer, protocol=2)
    path = tmp_path / "data.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
    with pytest.raises(UnsafePickleError):
        read_torch_list(path)
    assert not (tmp_path / "pwned").exists()


def test_real_encoding_imports_and_data_pt_is_refused_for_dlib(cse546: Path) -> None:
    gallery = read_gallery_file(cse546 / "encoding", "dlib-resnet", 128)
    assert len(gallery.people) == 11
    assert {"president_trump", "floki", "bush"} <= set(gallery.people)

    names, vectors = read_torch_list(cse546 / "data.pt")
    assert vectors.shape == (79, 512) and len(names) == 79
    with pytest.raises(GalleryError) as caught:
        read_gallery_file(cse546 / "data.pt", "dlib-resnet", 128)
    assert caught.value.code == "embedder_mismatch"
    assert "512" in caught.value.message and "facenet" in caught.value.message


def test_importing_the_same_gallery_twice_changes_nothing() -> None:
    gallery = Gallery("dlib-resnet", 128)
    incoming = Gallery("dlib-resnet", 128)
    incoming.add("ada", _vectors(2))
    assert gallery.merge(incoming) == 2
    assert gallery.merge(incoming) == 0
    assert gallery.counts() == {"ada": 2}
