"""Converted models are built ahead of time (`facereel models prepare`, as the Lambda image
does) and then only read: a prepared cache is used without a write, and a cache that lacks
the model and cannot take it costs a conversion, said in the log with the command that
fills it."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from facereel.core.faces.embed_dlib import RESNET_WEIGHTS
from facereel.core.faces.embed_onnx import cached_model
from facereel.core.faces.model_files import model_file


def test_a_prepared_cache_is_read_without_writing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    done = subprocess.run([sys.executable, "-m", "facereel", "models", "prepare",
                           "--cache-dir", str(cache)], capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "prepared embedder dlib-resnet (onnx)" in done.stderr
    (graph,) = cache.glob("dlib-resnet-*.onnx")
    assert str(graph) in done.stdout
    assert stat.S_IMODE(graph.stat().st_mode) & 0o044 == 0o044, "readable by another user"
    before = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert cached_model(model_file(RESNET_WEIGHTS), cache) == graph
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == before, "nothing written"


def test_a_cache_that_cannot_take_a_missing_model_says_how_to_fill_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    model = cached_model(model_file(RESNET_WEIGHTS), blocker / "cache")
    assert isinstance(model, bytes) and len(model) > 1_000_000, "converted in memory instead"
    assert "facereel models prepare --cache-dir" in caplog.text
