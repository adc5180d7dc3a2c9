"""Run the Lambda handler the way Lambda does: under the real `awslambdaric` client, driven by
a Runtime API stub on 127.0.0.1 (`/2018-06-01/runtime/invocation/next`, `/response`,
`/error`, `/init/error`).

`LambdaFunction` is one function: an `awslambdaric` process (its own process group, stopped
by pid) with the function's settings, and the stub it polls. `invoke(event)` hands the
process an event and waits for its answer. The `/next` answer carries
`Content-Type: application/json`: without it awslambdaric 4.2.x crashes.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.servers import HOST, ServerProcess

HANDLER = "facereel.deploy.aws_lambda.handler"
PREFIX = "/2018-06-01/runtime"
RECORDER = Path(__file__).resolve().parent / "lambda_recorder"  # its sitecustomize.py
ACCOUNT = "123456789012"


@dataclass(frozen=True, slots=True)
class Answer:
    ok: bool  # False: the handler raised (the runtime posted to /error)
    payload: Any


class QuietServer(ThreadingHTTPServer):
    """A stopped function drops its long poll mid-request: not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class RuntimeApiStub:
    """The Runtime API of one function: events go out on `/next`, answers come back."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.events: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.answers: dict[str, queue.Queue[Answer]] = {}
        self.polled = threading.Event()  # the runtime has initialised and asked for work
        self.init_error: Any = None
        self.server = QuietServer((HOST, 0), self._handler_class())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.server.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def submit(self, event: Any) -> str:
        request_id = str(uuid.uuid4())
        self.answers[request_id] = queue.Queue(maxsize=1)
        self.events.put((request_id, json.dumps(event).encode()))
        return request_id

    def answer(self, request_id: str, timeout_s: float) -> Answer:
        try:
            return self.answers[request_id].get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"{self.function_name} did not answer within "
                                 f"{timeout_s} s") from None
        finally:
            self.answers.pop(request_id, None)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test's output is for the test."""

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404, b"{}")
                    return
                stub.polled.set()
                request_id, body = stub.events.get()  # long poll, as the real API does
                deadline = str(int((time.time() + 900) * 1000))
                arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{stub.function_name}"
                self._reply(200, body, {"Lambda-Runtime-Aws-Request-Id": request_id,
                                        "Lambda-Runtime-Deadline-Ms": deadline,
                                        "Lambda-Runtime-Invoked-Function-Arn": arn,
                                        "Lambda-Runtime-Trace-Id": "Root=1-0-0;Sampled=0"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = json.loads(self.rfile.read(length) or b"null")
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts == ["init", "error"]:
                    stub.init_error = data
                elif len(parts) == 3 and parts[0] == "invocation" and parts[1] in stub.answers:
                    stub.answers[parts[1]].put(Answer(parts[2] == "response", data))
                self._reply(202, b'{"status":"OK"}')

            def _reply(self, status: int, body: bytes,
                       headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler


class LambdaFunction(ServerProcess):
    """One function: `python -m awslambdaric facereel.deploy.aws_lambda.handler` with the
    function's environment, polling its own Runtime API stub. With `calls` set, every AWS
    call its code makes is appended to that file (the recorder's sitecustomize)."""

    def __init__(self, workdir: Path, function_name: str, env: dict[str, str],
                 calls: Path | None = None, python: list[str] | None = None,
                 startup_timeout_s: float = 120.0) -> None:
        self.name = function_name
        super().__init__(workdir, startup_timeout_s)
        self.function_name = function_name
        self.env = env
        self.calls = calls
        self.python = python or [sys.executable]
        self.stub = RuntimeApiStub(function_name)

    def start(self) -> None:
        self.stub.start()
        env = {**self.env, "AWS_LAMBDA_RUNTIME_API": self.stub.address,
               "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
               "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": self.env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                                                               "2048"),
               "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_FORMAT": "JSON"}
        if self.calls is not None:
            env["FACEREEL_TEST_CALLS"] = str(self.calls)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(RECORDER), env.get("PYTHONPATH", "")) if p)
        self._spawn([*self.python, "-m", "awslambdaric", HANDLER], env)
        self._wait_ready(lambda: self.stub.polled.is_set() or self.stub.init_error is not None)
        if self.stub.init_error is not None:
            self.stop()
            raise AssertionError(f"{self.function_name} failed to start: "
                                 f"{self.stub.init_error}\n{self.log_tail()}")

    def invoke(self, event: Any, timeout_s: float = 120.0) -> Answer:
        return self.stub.answer(self.stub.submit(event), timeout_s)

    def stop(self) -> None:
        super().stop()
        self.stub.stop()
