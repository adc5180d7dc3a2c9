"""Gallery files are outside input: the crafted ones that crashed or ate memory are refused
quickly with a clear message (and `facereel gallery import` exits 2 in one line)."""

from __future__ import annotations

import io
import json
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facereel.cli import app
from facereel.core.gallery import Gallery
from facereel.core.gallery_io import MAX_FACES, _rebuild_tensor, read_gallery_file
from facereel.errors import GalleryError


def _pickle(path: Path, payload: object) -> Path:
    path.write_bytes(pickle.dumps(payload, protocol=4))
    return path


def test_a_self_referencing_list_is_refused_at_once(tmp_path: Path) -> None:
    nested: list[object] = [0.0]
    for _ in range(40):  # 2**40 leaves once expanded, a few hundred bytes pickled
        nested = [nested, nested]
    path = _pickle(tmp_path / "bomb", {"name": ["x"], "encoding": [nested]})
    assert path.stat().st_size < 1000
    started = time.monotonic()
    with pytest.raises(GalleryError, match="not a flat list"):
        read_gallery_file(path, "dlib-resnet", 128)
    assert time.monotonic() - started < 5


def test_millions_of_references_to_one_vector_are_capped(tmp_path: Path) -> None:
    vector = np.zeros(128)
    count = MAX_FACES + 1
    path = _pickle(tmp_path / "many", {"name": ["x"] * count, "encoding": [vector] * count})
    with pytest.raises(GalleryError, match=f"more than the {MAX_FACES}"):
        read_gallery_file(path, "dlib-resnet", 128)


def test_an_npz_whose_header_is_a_list_is_not_a_gallery(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    header = np.frombuffer(json.dumps(["not", "an", "object"]).encode(), dtype=np.uint8)
    np.savez(buffer, header=header, vectors=np.zeros((1, 128), dtype=np.float32))
    with pytest.raises(GalleryError, match="not a facereel gallery"):
        Gallery.from_bytes(buffer.getvalue(), "list.npz")


def test_a_tensor_view_outside_its_storage_is_refused() -> None:
    storage = np.zeros(16, dtype=np.float32)
    assert _rebuild_tensor(storage, 0, (4, 4), (4, 1)).shape == (4, 4)
    for offset, size, stride in ((0, (4, 5), (4, 1)), (15, (2,), (1,)), (0, (2,), (-1,))):
        with pytest.raises(GalleryError, match=r"storage|shape"):
            _rebuild_tensor(storage, offset, size, stride)


def test_the_cli_refuses_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    nested: list[object] = [0.0]
    for _ in range(40):
        nested = [nested, nested]
    path = _pickle(tmp_path / "bomb", {"name": ["x"], "encoding": [nested]})
    outcome = CliRunner().invoke(app, ["gallery", "import", str(path), "--data-dir",
                                       str(tmp_path / "state")])
    assert outcome.exit_code == 2
    assert len(outcome.stderr.strip().splitlines()) == 1 and "not a flat list" in outcome.stderr
