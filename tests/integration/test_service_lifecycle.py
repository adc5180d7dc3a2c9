"""No process outlives `facereel up`, and one data directory has one `up`: `kill -9` of the
main process takes its fork server, pipeline workers and app workers with it, a second `up` on
the same directory is refused in one line, and a restart after the kill starts cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from tests.support.http_service import HttpService


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
    return alive


def test_kill_9_of_up_takes_every_child_with_it(cse546: Path, tmp_path: Path) -> None:
    service = HttpService(tmp_path / "state", workers=2)
    service.prepare(cse546)
    service.start()
    try:
        service.wait_ready()
        assert service.process is not None
        up = psutil.Process(service.process.pid)
        children = [p.pid for p in up.children(recursive=True)]
        assert len(children) >= 4, "fork server, 2 pipeline workers, an app worker"
        second = service.cli("up", "--workers", "1", "--port", "0", check=False)
        assert second.returncode == 2 and "in use by another facereel up" in second.stderr
        os.kill(up.pid, signal.SIGKILL)
        service.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _alive(children) == [], "every child died with its parent"
    finally:
        if service.process is not None and service.process.poll() is None:
            service.kill_all()
        service.process = None
    restarted = subprocess.run(  # the lock died with the killed process: a restart is fine
        ["timeout", "-s", "INT", "8", *service_command(service)], env=service.env,
        capture_output=True, text=True, timeout=60, check=False)
    assert "facereel is up" in restarted.stderr, restarted.stderr[-2000:]


def service_command(service: HttpService) -> list[str]:
    from tests.support.pipeline import FACEREEL

    return [*FACEREEL, "up", "--data-dir", str(service.data_dir), "--workers", "1",
            "--port", "0"]
