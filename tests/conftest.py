"""Shared fixtures: where the real test clips live, and small real images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from facereel.app.recognition import build_recognizer
from facereel.config import Settings
from facereel.core.gallery_io import read_gallery_file
from facereel.core.recognize import Recognizer
from facereel.ports.metadata import read_people_json
from facereel.ports.metadata.sqlite import SqliteMetadata
from tests.support.truth import CLIP_PEOPLE

__all__ = ["CLIP_PEOPLE", "REPO_ROOT"]  # imported by the test modules

# Ray reads these when it is imported: every Ray a test starts or joins stays on loopback
# (else 127.0.0.1 becomes the machine's network address), without token auth (which a
# `ray.init` would turn on and a worker started without it would fail), and reports nothing.
for _name, _value in (("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"), ("RAY_AUTH_MODE", "disabled"),
                      ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_name, _value)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "cse546"


def _data_dir() -> Path:
    return Path(os.environ.get("FACEREEL_TEST_DATA", str(DEFAULT_DATA)))


@pytest.fixture(scope="session")
def cse546() -> Path:
    """The real CSE546 clips and galleries; skip (or fail under CI=true) when absent."""
    path = _data_dir()
    if not (path / "videos").is_dir():
        message = f"real test data not found at {path} (set FACEREEL_TEST_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def clips(cse546: Path) -> dict[str, Path]:
    """Clip name (e.g. 'test_0') -> path of the real video."""
    return {p.stem: p for p in sorted((cse546 / "videos").glob("*.mp4"))}




@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, cse546: Path) -> Settings:
    """Settings on a private data dir holding the `encoding` gallery and the metadata."""
    data_dir = tmp_path_factory.mktemp("facereel-data")
    settings = Settings(data_dir=data_dir, workers=2)
    gallery = read_gallery_file(cse546 / "encoding", settings.recognition.embedder, 128)
    gallery.save(settings.storage.gallery_path)
    SqliteMetadata(settings.storage.metadata_path).put_people(
        read_people_json(cse546 / "student_data.json")
    )
    return settings


@pytest.fixture(scope="session")
def recognizer(settings: Settings) -> Recognizer:
    return build_recognizer(settings)
