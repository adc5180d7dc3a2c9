"""A small stand-in for an OpenFaaS gateway in front of python3-http-debian functions, on
127.0.0.1, for tests (faas-cli and a cluster cannot run here).

Written from the template's documented contract, not its code: a function folder holds
`handler.py` exposing `handle(event, context)`; `event` has `body` (the raw bytes), `headers`,
`method`, `query` and `path`, `context` has `hostname`; `handle` returns `{"statusCode",
"body", "headers"}` (status 200 when absent; a dict body is sent as JSON, anything else as
its text; None is an empty 200).

Routes, as the gateway's: `/function/<name>[/<path>]` invokes and answers (the function sees
`/<path>`); `/async-function/<name>` answers 202 with an `X-Call-Id` at once and invokes later,
one call at a time, from a queue (the gateway's NATS queue-worker); `/healthz`. Each function
folder's `handler.py` is imported as the template imports it, once per process.

    python -m tests.support.openfaas_gateway --port 8080 face-recognition=deploy/openfaas/...
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import queue
import signal
import socket
import sys
import threading
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.servers import HOST, ServerProcess, free_port

Handle = Callable[["Event", "Context"], Any]


@dataclass(frozen=True)
class Event:
    body: bytes
    headers: dict[str, str]
    method: str = "POST"
    query: dict[str, str] = field(default_factory=dict)
    path: str = "/"


@dataclass(frozen=True)
class Context:
    hostname: str = "localhost"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]


def load_handle(folder: Path) -> Handle:
    """`handle` of a function folder's handler.py, imported as a module of its own."""
    name = f"openfaas_function_{folder.name.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, folder / "handler.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no handler.py in {folder}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handle: Handle = module.handle
    return handle


def reply_of(answer: Any) -> Reply:
    """The HTTP reply for what `handle` returned, per the template's contract."""
    if answer is None:
        return Reply(200, b"", {})
    headers = {str(k): str(v) for k, v in dict(answer.get("headers") or {}).items()}
    body = answer.get("body", "")
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    else:
        data = str(body).encode()
        headers.setdefault("Content-Type", "text/html; charset=utf-8")
    return Reply(int(answer.get("statusCode", 200)), data, headers)


class Gateway:
    """The functions by name, and the async queue with the thread that drains it."""

    def __init__(self, functions: dict[str, Handle]) -> None:
        self.functions = functions
        self.pending: queue.Queue[tuple[str, Event] | None] = queue.Queue()
        self.worker = threading.Thread(target=self._drain, name="queue-worker", daemon=True)
        self.worker.start()

    def call(self, name: str, event: Event) -> Reply:
        return reply_of(self.functions[name](event, Context(socket.gethostname())))

    def _drain(self) -> None:
        while (item := self.pending.get()) is not None:
            name, event = item
            reply = self.call(name, event)
            print(f"async {name} -> {reply.status}", flush=True)


def _route(path: str) -> tuple[str, str, str]:
    """(kind, function, the path the function sees) of a gateway path."""
    parts = path.split("/", 3)  # '', kind, name, rest
    if len(parts) < 3 or parts[1] not in ("function", "async-function") or not parts[2]:
        return "", "", ""
    return parts[1], parts[2], "/" + (parts[3] if len(parts) > 3 else "")


class GatewayHandler(BaseHTTPRequestHandler):
    gateway: Gateway  # set on the class by `serve`
    protocol_version = "HTTP/1.1"

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _invoke(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(Reply(200, b"OK", {}))
            return
        kind, name, path = _route(url.path)
        if name not in self.gateway.functions:
            self._send(Reply(404, f"no function {name!r}".encode(), {}))
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        event = Event(body, dict(self.headers.items()), self.command,
                      dict(parse_qsl(url.query)), path)
        if kind == "async-function":
            call_id = str(uuid.uuid4())
            self.gateway.pending.put((name, event))
            self._send(Reply(202, b"", {"X-Call-Id": call_id}))
            return
        self._send(self.gateway.call(name, event))

    # the template accepts these methods; each goes to the function
    def do_GET(self) -> None:
        self._invoke()

    def do_POST(self) -> None:
        self._invoke()

    def do_PUT(self) -> None:
        self._invoke()

    def do_PATCH(self) -> None:
        self._invoke()

    def do_DELETE(self) -> None:
        self._invoke()

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}", flush=True)


def serve(port: int, folders: dict[str, Path]) -> None:
    gateway = Gateway({name: load_handle(folder) for name, folder in folders.items()})
    GatewayHandler.gateway = gateway
    server = ThreadingHTTPServer((HOST, port), GatewayHandler)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown).start()  # shutdown waits for serve_forever

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"gateway on http://{HOST}:{port}: {', '.join(folders)}", flush=True)
    server.serve_forever()
    gateway.pending.put(None)
    gateway.worker.join(timeout=60)


class GatewayProcess(ServerProcess):
    """The stand-in gateway as a child process (so the functions read their settings from
    its environment, as in a container)."""

    name = "openfaas-gateway"

    def __init__(self, workdir: Path, folders: dict[str, Path], env: dict[str, str]) -> None:
        super().__init__(workdir, startup_timeout_s=60.0, stop_timeout_s=30.0)
        self.folders = folders
        self.env = env
        self.url = ""

    def start(self) -> None:
        port = free_port(set())
        self.url = f"http://{HOST}:{port}"
        root = Path(__file__).resolve().parents[2]
        argv = [sys.executable, "-m", "tests.support.openfaas_gateway", "--port", str(port),
                *(f"{name}={folder}" for name, folder in self.folders.items())]
        self._spawn(argv, {**self.env, "PYTHONPATH": str(root)})
        self._wait_ready(self._healthy)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("functions", nargs="+", help="name=folder holding handler.py")
    args = parser.parse_args()
    folders = {name: Path(folder) for name, _, folder in
               (f.partition("=") for f in args.functions)}
    serve(args.port, folders)


if __name__ == "__main__":
    main()
