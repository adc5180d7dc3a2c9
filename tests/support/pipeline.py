"""Run `facereel up` as a real process for end-to-end tests, and poke it (kill workers...)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

FACEREEL = [sys.executable, "-m", "facereel"]


class Pipeline:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, workers: int = 2,
                 log: Path | None = None) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, "FACEREEL_VISIBILITY": "20", "FACEREEL_POLL_INTERVAL": "0.3",
                    "FACEREEL_SETTLE": "0.3", "FACEREEL_PORT": "0", **(env or {})}
        self.workers = workers
        self.log = log or data_dir / "up.log"
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*FACEREEL, *args, "--data-dir", str(self.data_dir)],
                                env=self.env, capture_output=True, text=True, timeout=600,
                                check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"facereel {' '.join(args)} failed:\n{result.stderr}")
        return result

    def prepare(self, data: Path) -> None:
        """Provision (a no-op on embedded backends), then import the `encoding` gallery and
        the student metadata of a CSE546 data folder."""
        self.cli("provision")
        self.cli("gallery", "import", str(data / "encoding"))
        self.cli("metadata", "load", str(data / "student_data.json"))

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [*FACEREEL, "up", "--data-dir", str(self.data_dir), "--workers", str(self.workers)],
            env=self.env, stdout=handle, stderr=subprocess.STDOUT)

    def wait_log(self, text: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log.exists() and text in self.log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared in {self.log}")

    def workers_pids(self) -> list[int]:
        """PIDs of the worker processes (children of the fork server under `up`)."""
        assert self.process is not None
        try:
            up = psutil.Process(self.process.pid)
            return [p.pid for server in up.children() for p in server.children()]
        except psutil.NoSuchProcess:
            return []

    def kill_worker(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def kill_all(self) -> None:
        """SIGKILL `up` and every process under it, as a power cut would."""
        assert self.process is not None
        procs = [psutil.Process(self.process.pid)]
        with contextlib.suppress(psutil.NoSuchProcess):
            procs += procs[0].children(recursive=True)
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> int:
        """Ctrl-C, then wait for the clean exit."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise
        self.process = None
        return code

    def status(self) -> dict[str, Any]:
        result = self.cli("status", "--json")
        return dict(json.loads(result.stdout))

    def wait_done(self, expected: int, timeout_s: float = 300.0) -> dict[str, Any]:
        """Wait until `expected` videos are done or failed and nothing is pending."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.status()
            finished = sum(status["videos"].get(s, 0) for s in ("done", "error", "dead"))
            if finished >= expected and status["pending"] == 0:
                return status
            time.sleep(1.0)
        raise AssertionError(f"pipeline did not finish in {timeout_s} s: {self.status()}\n"
                             + self.log.read_text(errors="replace")[-3000:])


def s3_buckets(endpoint: str, suffix: str) -> dict[str, str]:
    """Settings putting the three buckets on an S3 endpoint, named with `suffix`."""
    env = {}
    for bucket, name in (("INPUT", "input"), ("STAGE1", "stage-1"), ("OUTPUT", "output")):
        env[f"FACEREEL_{bucket}__BACKEND"] = "s3"
        env[f"FACEREEL_{bucket}__ENDPOINT"] = endpoint
        env[f"FACEREEL_{bucket}__NAME"] = f"{name}-{suffix}"
    return env
