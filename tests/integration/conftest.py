"""Session-wide storage servers for the integration tests (SeaweedFS and moto).

Each server starts once per session on 127.0.0.1 and is stopped at the end, also when tests
fail. A server that cannot start skips the tests needing it, except under CI=true, where a
missing backend must fail the run instead of silently testing less.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from tests.conftest import REPO_ROOT
from tests.support.live_api import Live, start_live
from tests.support.servers import (
    MotoServer,
    SeaweedServer,
    ServerProcess,
    ServerUnavailableError,
)

S = TypeVar("S", bound=ServerProcess)


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def _running(server: S) -> Iterator[S]:
    try:
        server.start()
    except ServerUnavailableError as exc:
        _unavailable(f"{server.name} test server unavailable: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A SeaweedFS server (`weed mini`) with an S3 endpoint and its credentials."""
    with _running(SeaweedServer(tmp_path_factory.mktemp("seaweed"))) as server:
        yield server


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto server emulating S3, SQS and DynamoDB."""
    with _running(MotoServer(tmp_path_factory.mktemp("moto"))) as server:
        yield server


@pytest.fixture(scope="session")
def security_report() -> Iterator[dict[str, Any]]:
    """What the hardening tests tried and what held, written to
    test-artifacts/security-report.json at the end of the session."""
    report: dict[str, Any] = {}
    yield report
    if report:
        folder = Path(os.environ.get("FACEREEL_ARTIFACTS", REPO_ROOT / "test-artifacts"))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "security-report.json").write_text(json.dumps(report, indent=1,
                                                                sort_keys=True))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, cse546: Path,
         clips: dict[str, Path]) -> Iterator[Live]:
    """The API on the real composition `facereel up` serves, one per test module (its worker
    processes must be gone before another module's process pool runs)."""
    yield from start_live(tmp_path_factory, cse546, clips)
