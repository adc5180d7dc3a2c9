"""The HTTP API served by a real uvicorn on 127.0.0.1 in a thread of the test process, with
facereel's connection protocol and middleware, for attacks that need real sockets (partial
headers, bodies that never end) and no pipeline behind them."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from facereel.app.jobs import JobStore
from facereel.config import Settings
from facereel.http.app import create_app
from facereel.http.connections import PendingHeaders, protocol_for
from facereel.http.metrics import Metrics
from facereel.http.services import Services
from facereel.runtime.watcher import watcher_for
from tests.support.stages import ports_of


@dataclass
class ApiServer:
    host: str
    port: int
    services: Services
    pending: PendingHeaders

    def connect(self, timeout_s: float = 10.0) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def request_head(self, sock: socket.socket, method: str, path: str,
                     headers: dict[str, str]) -> None:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        sock.sendall("\r\n".join(lines).encode())


def read_response(sock: socket.socket, limit: int = 1 << 16) -> tuple[int, bytes]:
    """Status and raw bytes of the response on `sock` (until it closes or goes quiet)."""
    data = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while len(data) < limit:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data and b'"error"' in data and data.rstrip().endswith(b"}"):
                break
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


@contextlib.contextmanager
def api_server(settings: Settings, pending: PendingHeaders | None = None) -> Iterator[ApiServer]:
    ports = ports_of(settings)
    services = Services(settings, ports, JobStore(settings.data_dir / "jobs.db", ports.metadata),
                        watcher_for(settings, ports), Metrics())
    pending = pending or PendingHeaders()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    config = uvicorn.Config(create_app(services), log_config=None, access_log=False,
                            limit_concurrency=None, http=protocol_for(pending))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield ApiServer("127.0.0.1", sock.getsockname()[1], services, pending)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
