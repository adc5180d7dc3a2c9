"""The bucket monitor's way of handing an upload over (`facereel watch --invoke URL`): POST
`{"bucket", "key"}` to a function, as the original deployment's monitor did for OpenFaaS.

A synchronous URL (`.../function/face-recognition`) answers once the video is done; an
asynchronous one (`.../async-function/face-recognition`) answers 202 once the gateway has
queued the call. The watcher remembers an upload only after that answer (a 2xx; exactly 202
for an async URL). Connection errors, timeouts, 429 and 5xx are retried with exponential
backoff, a bounded number of times; after the last one the round stops (the function is
down: the next uploads would fail the same way) and the next round tries again. Any other
answer is a refusal of this upload (a 400 for its key, a 401 for our key...): one log line,
an error record where results go, and no retry in this process, so the record is not
rewritten every round; a restart (after fixing the key, say) tries again, since nothing
was remembered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from facereel.config import Settings
from facereel.errors import ConfigError
from facereel.pipeline.inline import correlation_id
from facereel.pipeline.wiring import Ports
from facereel.runtime.watcher import SenderUnavailableError, error_recorder

log = logging.getLogger(__name__)
RETRIED_BELOW_500 = {408, 429}  # the server's timeout, too many requests: retried like 5xx
Record = Callable[[str, str, str, str], None]  # key, etag, error code, message
Wait = Callable[[float], bool]  # sleep up to s seconds; True when asked to stop meanwhile


class InvokeUnavailableError(SenderUnavailableError):
    """The function did not take an upload after every retry (down, overloaded...)."""

    code = "invoke_unavailable"


def _retried(status: int) -> bool:
    return status >= 500 or status in RETRIED_BELOW_500


def _problem(response: httpx.Response) -> str:
    """What the function said: its error's message when it has our error shape."""
    try:
        doc: Any = response.json()
        error = doc["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase


class FunctionInvoker:
    """A watcher `Send` that invokes a function URL with the upload's bucket and key."""

    def __init__(self, url: str, api_key: str, bucket: str, record: Record, *,
                 timeout_s: float, attempts: int, backoff_s: float,
                 wait: Wait | None = None, client: httpx.Client | None = None) -> None:
        self.url = url
        self.bucket = bucket
        self.record = record
        self.asynchronous = "/async-function/" in url
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.wait = wait or _sleep
        self.client = client or httpx.Client(timeout=httpx.Timeout(timeout_s, connect=10.0))
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.refused: set[tuple[str, str]] = set()

    def __call__(self, key: str, etag: str, size: int) -> bool:
        if (key, etag) in self.refused:
            return False
        cid = correlation_id({"key": key, "etag": etag})  # the function logs the same id
        problem = ""
        for attempt in range(1, self.attempts + 1):
            started = time.perf_counter()
            try:
                response = self.client.post(self.url, json={"bucket": self.bucket, "key": key},
                                            headers=self.headers)
            except httpx.TransportError as exc:  # refused, reset, timed out...
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if self._taken(response):
                    log.info("invoked %s for %s: %d", self.url, key, response.status_code,
                             extra={"key": key, "attempt": attempt, "correlation_id": cid,
                                    "seconds": round(time.perf_counter() - started, 3)})
                    return True
                if not _retried(response.status_code):
                    self._refuse(key, etag, cid, response)
                    return False
                problem = f"{response.status_code} {_problem(response)}"
            if attempt < self.attempts and self.wait(self.backoff_s * 2 ** (attempt - 1)):
                break  # stopping: the next run tries again
        raise InvokeUnavailableError(f"{self.url} did not take {key!r} after {attempt} "
                                     f"tries: {problem}")

    def _taken(self, response: httpx.Response) -> bool:
        if self.asynchronous:
            return response.status_code == 202
        return response.is_success

    def _refuse(self, key: str, etag: str, cid: str, response: httpx.Response) -> None:
        message = f"{self.url} refused {key!r}: {response.status_code} {_problem(response)}"
        log.error("%s", message, extra={"key": key, "status": response.status_code,
                                        "correlation_id": cid})
        self.record(key, etag, "invoke_refused", message)
        self.refused.add((key, etag))  # once recorded: a failed record is tried again


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def invoker_for(settings: Settings, ports: Ports, url: str, api_key: str | None,
                wait: Wait | None = None) -> FunctionInvoker:
    """The monitor's invoker: the input bucket's name in every request, refusals recorded as
    error results in the output bucket (where every input ends as one record)."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--invoke needs an http(s) URL, not {url!r}")
    key = api_key if api_key is not None else settings.openfaas.invoke_key.get_secret_value()
    if not key:
        raise ConfigError("the functions require an API key: give --invoke-key-file or set "
                          "FACEREEL_INVOKE_KEY")

    openfaas = settings.openfaas
    return FunctionInvoker(url, key, ports.input.bucket, error_recorder(ports),
                           timeout_s=openfaas.invoke_timeout, attempts=openfaas.invoke_attempts,
                           backoff_s=settings.pipeline.retry_backoff, wait=wait)
