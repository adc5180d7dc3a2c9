"""Shared fixtures: where the real test clips live, and small real images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
