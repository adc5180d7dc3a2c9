"""A Lambda Invoke API of our own, on 127.0.0.1 (moto runs no function code without Docker):
`POST /2015-03-31/functions/<name>/invocations` with `X-Amz-Invocation-Type: Event` is
answered 202 at once and recorded; the payload is then run by that function (a
`LambdaFunction` under awslambdaric), and a failed run lands in the function's on-failure
destination (its stage's dead-letter queue, as the template declares, with
MaximumRetryAttempts 0), in the record format Lambda's destinations use."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.lambda_runtime import LambdaFunction, QuietServer
from tests.support.servers import HOST


@dataclass(frozen=True, slots=True)
class Invocation:
    function: str
    invocation_type: str
    payload: dict[str, Any]


class InvokeApiStub:
    def __init__(self, functions: dict[str, LambdaFunction], sqs: Any) -> None:
        self.functions = functions  # by function name
        self.sqs = sqs
        self.invocations: list[Invocation] = []
        self.pending: queue.Queue[Invocation | None] = queue.Queue()
        self.busy = 0  # invocations accepted and not yet finished
        self.lock = threading.Lock()
        self.server = QuietServer((HOST, 0), self._handler_class())
        self.threads = [threading.Thread(target=self.server.serve_forever, daemon=True),
                        threading.Thread(target=self._dispatch, daemon=True)]

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}"

    def __enter__(self) -> InvokeApiStub:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.pending.put(None)
        self.server.shutdown()
        self.server.server_close()

    def wait_idle(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if self.busy == 0:
                    return
            time.sleep(0.1)
        raise AssertionError(f"invocations still running after {timeout_s} s")

    def _dispatch(self) -> None:
        """Run accepted invocations one at a time, as their functions (Lambda's async queue)."""
        while (item := self.pending.get()) is not None:
            try:
                answer = self.functions[item.function].invoke(item.payload)
                if not answer.ok:
                    self._on_failure(item, answer.payload)
            finally:
                with self.lock:
                    self.busy -= 1

    def _on_failure(self, item: Invocation, error: Any) -> None:
        record = {"version": "1.0", "timestamp": "2026-11-29T12:00:00.000Z",
                  "requestContext": {"requestId": "stub", "condition": "RetriesExhausted",
                                     "functionArn": f"arn:aws:lambda:us-east-1:123456789012:"
                                                    f"function:{item.function}:$LATEST",
                                     "approximateInvokeCount": 1},
                  "requestPayload": item.payload,
                  "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                      "functionError": "Unhandled"},
                  "responsePayload": error}
        url = self.sqs.get_queue_url(QueueName=f"{item.function}-dead")["QueueUrl"]
        self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                parts = self.path.split("/")  # /2015-03-31/functions/<name>/invocations
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
                name = parts[3] if len(parts) > 4 else ""
                if name not in stub.functions or kind != "Event":
                    self._reply(404 if name not in stub.functions else 400)
                    return
                item = Invocation(name, kind, payload)
                with stub.lock:
                    stub.invocations.append(item)
                    stub.busy += 1
                stub.pending.put(item)
                self._reply(202)

            def _reply(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
