"""The monitor's invoker against a real HTTP server on 127.0.0.1 that answers a script of
status codes: what it retries (with exponential backoff, bounded), what it gives up on (one
record, not retried in this process), and what counts as taken (2xx; 202 for async)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from facereel.runtime.invoker import FunctionInvoker, InvokeUnavailableError
from tests.support.servers import free_port


@dataclass
class Script:
    statuses: list[int]
    seen: list[dict[str, Any]] = field(default_factory=list)


class ScriptedFunction(BaseHTTPRequestHandler):
    script: Script  # set per server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.script.seen.append({"path": self.path, "body": body,
                                 "auth": self.headers.get("Authorization")})
        status = self.script.statuses.pop(0)
        data = json.dumps({"error": {"code": "scripted", "message": f"said {status}"}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def function() -> Iterator[tuple[str, Script]]:
    script = Script([])
    handler = type("Handler", (ScriptedFunction,), {"script": script})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        thread.join()


@dataclass
class Calls:
    waits: list[float] = field(default_factory=list)
    records: list[tuple[str, str, str, str]] = field(default_factory=list)

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return False

    def record(self, key: str, etag: str, code: str, message: str) -> None:
        self.records.append((key, etag, code, message))


def invoker(url: str, calls: Calls, attempts: int = 4) -> FunctionInvoker:
    return FunctionInvoker(url, "the-key", "videos", calls.record, timeout_s=30,
                           attempts=attempts, backoff_s=0.5, wait=calls.wait)


def test_5xx_and_429_are_retried_with_doubling_backoff(function: tuple[str, Script]) -> None:
    url, script = function
    calls = Calls()
    script.statuses = [503, 429, 200]
    assert invoker(f"{url}/function/face-recognition", calls)("a.mp4", "e1", 10) is True
    assert calls.waits == [0.5, 1.0] and calls.records == []
    assert [s["body"] for s in script.seen] == [{"bucket": "videos", "key": "a.mp4"}] * 3
    assert {s["auth"] for s in script.seen} == {"Bearer the-key"}

    script.statuses = [500, 502, 504]
    with pytest.raises(InvokeUnavailableError, match="after 3 tries: 504 scripted: said 504"):
        invoker(f"{url}/function/face-recognition", calls, attempts=3)("b.mp4", "e2", 10)
    assert calls.waits[2:] == [0.5, 1.0], "no wait after the last try"


def test_a_refusal_is_recorded_once_and_not_retried_in_this_process(
        function: tuple[str, Script]) -> None:
    url, script = function
    calls = Calls()
    invoke = invoker(f"{url}/function/face-recognition", calls)
    script.statuses = [400]
    assert invoke("bad.mp4", "e1", 10) is False and invoke("bad.mp4", "e1", 10) is False
    assert len(script.seen) == 1 and calls.waits == []
    (key, etag, code, message), = calls.records
    assert (key, etag, code) == ("bad.mp4", "e1", "invoke_refused")
    assert "400 scripted: said 400" in message
    script.statuses = [200]
    assert invoke("bad.mp4", "e2", 10) is True, "new content under the name is tried"


def test_an_async_invocation_is_taken_only_when_queued(function: tuple[str, Script]) -> None:
    url, script = function
    calls = Calls()
    invoke = invoker(f"{url}/async-function/face-recognition", calls)
    script.statuses = [202, 200]
    assert invoke("a.mp4", "e1", 10) is True
    assert invoke("b.mp4", "e1", 10) is False, "a 200 is not the gateway's queued answer"
    assert script.seen[0]["path"] == "/async-function/face-recognition"


def test_a_function_that_is_not_listening_is_retried_then_the_round_stops() -> None:
    calls = Calls()
    url = f"http://127.0.0.1:{free_port(set())}/function/face-recognition"
    with pytest.raises(InvokeUnavailableError, match="ConnectError"):
        invoker(url, calls, attempts=3)("a.mp4", "e1", 10)
    assert calls.waits == [0.5, 1.0] and calls.records == []
