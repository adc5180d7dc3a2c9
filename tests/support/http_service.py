"""A real `facereel up` with its HTTP API on 127.0.0.1, for end-to-end, load and browser tests."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.pipeline import Pipeline
from tests.support.servers import free_port

API_KEY = "test-key-0123456789"


class HttpService(Pipeline):
    """`facereel up` on a free port with an API key; `client()` talks to it."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, workers: int = 1,
                 api_key: str = API_KEY) -> None:
        self.port = free_port(set())
        self.api_key = api_key
        super().__init__(data_dir, {"FACEREEL_PORT": str(self.port), "FACEREEL_API_KEYS": api_key,
                                    **(env or {})}, workers)
        self.url = f"http://127.0.0.1:{self.port}"

    @contextmanager
    def running(self, data: Path) -> Iterator[HttpService]:
        """Prepared from a CSE546 data folder, started and ready; stopped cleanly after."""
        self.prepare(data)
        self.start()
        try:
            self.wait_ready()
            yield self
        finally:
            code = self.stop()
        assert code == 0, self.log.read_text(errors="replace")[-3000:]

    def client(self, timeout_s: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout_s,
                            headers={"Authorization": f"Bearer {self.api_key}"})

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Until the API answers and an app-tier worker has loaded its models."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"facereel up exited ({self.process.returncode}):\n"
                                     + self.log.read_text(errors="replace")[-3000:])
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            if "HTTP API listening" in log and "app-tier worker" in log:
                return
            time.sleep(0.2)
        raise AssertionError("facereel up did not become ready:\n"
                             + self.log.read_text(errors="replace")[-3000:])

    def metric(self, client: httpx.Client, name: str, labels: str = "") -> float:
        """One sample of the Prometheus text (0 when absent)."""
        text = client.get("/metrics").text
        pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "")
        found = re.search(rf"^{pattern} ([0-9.e+-]+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0
