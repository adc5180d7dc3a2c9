"""facereel as OpenFaaS functions (the python3-http-debian template): a thin adapter, event ->
delivery -> stage -> send, where "send" runs the next stages in the same invocation.

    face-recognition       POST {"bucket", "key"}: the pipeline for one uploaded object, every
                           stage in this invocation (what the bucket monitor, `facereel watch
                           --invoke`, calls); answers a summary holding the result document
    face-recognition-http  POST {"bucket", "key"}: the result document; read from the output
                           bucket when this content was already published, else computed

The template calls `handle(event, context)`: `event.body` (bytes), `.headers`, `.method`,
`.query`, `.path`; `context.hostname`. It answers `{"statusCode", "body", "headers"}`, a dict
body as JSON. Errors have the HTTP API's body (`{"error": {"code", "message"}}`) and status
codes, never a traceback.

Checks, in order: the API key first, in constant time, before anything else of the request is
read (a client without a key costs one comparison); then the method, the body (bounded size, a
JSON object with exactly `bucket` and `key`), the bucket (only the configured input bucket, as
`POST /v1/recognize`), the key (`key_problem`).

Settings come from the environment (stack.yml's `environment`); credentials and API keys from
OpenFaaS secrets, one file each in `openfaas_secrets` (/var/openfaas/secrets), named in
`SECRET_SETTINGS`, or from `FACEREEL_API_KEYS` and the other settings. A container serves many
invocations, so ports, models and the gallery are built once per process, on the first
authorised request.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from facereel.config import Settings, config_error
from facereel.errors import FacereelError
from facereel.http.auth import UNAUTHORIZED_HEADERS, key_is_valid
from facereel.http.errors import STATUS_CODES, ApiError, error_body
from facereel.logs import configure
from facereel.pipeline.context import StageContext
from facereel.pipeline.inline import correlation_id, run_inline
from facereel.pipeline.submit import first_message
from facereel.pipeline.wiring import Ports, build_ports
from facereel.ports.objectstore import ObjectInfo, ObjectNotFoundError, key_problem
from facereel.ports.queue import Body

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024  # {"bucket", "key"} with the longest valid key (1 KiB) fits many times
FIELDS = ("bucket", "key")
API_KEYS_SECRET = "facereel-api-keys"
BUCKETS = ("input", "stage1", "output")
# OpenFaaS secret (a file in the secrets folder) -> the setting it holds (flat name, or bucket
# and field). Secret names are Kubernetes names: lower case and dashes.
SECRET_SETTINGS: dict[str, tuple[str, ...]] = {
    API_KEYS_SECRET: ("api_keys",),
    "facereel-aws-access-key": ("aws_access_key",),
    "facereel-aws-secret-key": ("aws_secret_key",),
    **{f"facereel-{bucket}-{part}": (bucket, part.replace("-", "_"))
       for bucket in BUCKETS for part in ("access-key", "secret-key")},
}
JSON_HEADERS = {"Content-Type": "application/json"}
Response = dict[str, Any]


class FunctionEvent(Protocol):
    """What the template hands a function (read-only: the handler never changes it)."""

    @property
    def body(self) -> bytes | str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def method(self) -> str: ...
    @property
    def query(self) -> Mapping[str, str]: ...
    @property
    def path(self) -> str: ...


class FunctionContext(Protocol):
    @property
    def hostname(self) -> str: ...


Handler = Callable[[FunctionEvent, FunctionContext], Response]


def read_secret(folder: Path, name: str) -> str | None:
    """A secret's value (surrounding whitespace removed: files made with `echo` end in a
    newline), or None when the function was not given it."""
    try:
        return (folder / name).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def settings_with_secrets(base: Settings) -> Settings:
    """`base` with every secret found in the secrets folder applied over it."""
    folder = base.openfaas.openfaas_secrets
    values: dict[str, Any] = {}
    for name, target in SECRET_SETTINGS.items():
        value = read_secret(folder, name)
        if value is None:
            continue
        if name == API_KEYS_SECRET:  # one key per line is as good as comma-separated
            value = ",".join(value.split())
        if len(target) == 1:
            values[target[0]] = value
        else:
            values.setdefault(target[0], {})[target[1]] = value
    return base.with_overrides(**values)


def respond(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return {"statusCode": status, "body": body, "headers": {**JSON_HEADERS, **(headers or {})}}


def error_status(error: FacereelError) -> int:
    """The HTTP API's status for an error code; a storage failure it does not list is the
    service's trouble (503, worth a retry), not the client's."""
    if error.code in STATUS_CODES:
        return STATUS_CODES[error.code]
    return 503 if error.code.startswith("storage") else 400


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, whatever its case (the template's headers are Flask's, which ignore
    case; a plain dict does not)."""
    found = headers.get(name)
    if found is None:
        found = next((v for k, v in headers.items() if k.lower() == name.lower()), "")
    return str(found)


def requested_key(event: FunctionEvent, input_bucket: str) -> str:
    """The object key an authorised request names, or the ApiError saying what is wrong."""
    if event.method.upper() != "POST":
        raise ApiError(405, "method_not_allowed", 'POST {"bucket": ..., "key": ...}')
    raw = event.body.encode() if isinstance(event.body, str) else bytes(event.body or b"")
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"the request body is over {MAX_BODY} bytes")
    try:
        request = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_request", f"the body is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise ApiError(400, "invalid_request", 'the body must be a JSON object {"bucket", "key"}')
    unknown = sorted(set(request) - set(FIELDS))
    missing = [f for f in FIELDS if not isinstance(request.get(f), str)]
    if unknown or missing:
        problems = ([f"unknown fields: {', '.join(unknown)}"] if unknown else []) + \
            ([f"{', '.join(missing)}: required, a string"] if missing else [])
        raise ApiError(400, "invalid_request", "; ".join(problems))
    if request["bucket"] != input_bucket:
        raise ApiError(404, "unknown_bucket", f"unknown bucket {request['bucket']!r}: videos "
                       f"are read from the input bucket {input_bucket!r}")
    key = str(request["key"])
    if (problem := key_problem(key)) is not None:
        raise ApiError(400, "invalid_key", f"invalid object key {key!r}: {problem}")
    return key


@dataclass
class FunctionHost:
    """What the stages need in this process, built once."""

    ports: Ports
    context: StageContext
    running: threading.Lock  # one video at a time per replica: the platform adds replicas


class OpenFaasFunctions:
    """Both functions over one Settings; ports and models are built on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = settings.http.api_key_list
        self.input_bucket = settings.storage.input.name
        self._host: FunctionHost | None = None
        self._building = threading.Lock()
        if not self.keys:
            log.error("no API key configured (secret %s or FACEREEL_API_KEYS): every request "
                      "is refused", API_KEYS_SECRET)

    def host(self) -> FunctionHost:
        with self._building:
            if self._host is None:
                settings = self.settings
                ports = build_ports(settings.storage, settings.recognition.embedder)
                context = StageContext(ports, settings.recognition, settings.pipeline,
                                       settings.storage.gallery_staleness)
                self._host = FunctionHost(ports, context, threading.Lock())
            return self._host

    def face_recognition(self, event: FunctionEvent, context: FunctionContext) -> Response:
        """Run the pipeline for one uploaded object, all its stages in this invocation."""
        return self._answer(event, lambda info: respond(200, self._run(info)))

    def face_recognition_http(self, event: FunctionEvent, context: FunctionContext) -> Response:
        """The result document of an object of the input bucket (read when published)."""
        return self._answer(event, lambda info: respond(200, self._document(info)))

    def _answer(self, event: FunctionEvent, work: Callable[[ObjectInfo], Response]) -> Response:
        try:
            if not key_is_valid(_bearer(event.headers), self.keys):
                raise ApiError(401, "unauthorized", "a valid API key is required "
                               "(Authorization: Bearer <key>)", UNAUTHORIZED_HEADERS)
            key = requested_key(event, self.input_bucket)
            info = self.host().ports.input.head(key)
            if info is None:
                raise ApiError(404, "object_not_found", f"no object {key!r} in the input "
                               f"bucket {self.input_bucket!r}")
            return work(info)
        except ApiError as exc:
            return respond(exc.status, error_body(exc.code, exc.message), exc.headers)
        except FacereelError as exc:
            log.warning("request failed (%s): %s", exc.code, exc.message)
            return respond(error_status(exc), error_body(exc.code, exc.message))
        except Exception:
            log.exception("function failed")
            return respond(500, error_body("internal", "internal error; the function's log "
                                           "says more"))

    def _run(self, info: ObjectInfo) -> dict[str, Any]:
        """Every stage for this content, here; a summary holding the result document."""
        host = self.host()
        entry, body = first_message(info.key, info.etag, info.size)
        cid = correlation_id(body)
        started = time.perf_counter()
        with host.running:
            log.info("running %s", info.key, extra={"key": info.key, "correlation_id": cid})
            runs = run_inline(host.context, entry, body)
        seconds = round(time.perf_counter() - started, 3)
        result = _result_of(host, runs)
        log.info("ran %s", info.key, extra={"key": info.key, "correlation_id": cid,
                                            "stages": len(runs), "seconds": seconds})
        return {"key": info.key, "etag": info.etag, "correlation_id": cid,
                "stages": [name for name, _ in runs], "seconds": seconds,
                "status": result["status"] if result else "skipped", "result": result}

    def _document(self, info: ObjectInfo) -> dict[str, Any]:
        """The published result when it describes this content, else a fresh run's."""
        host = self.host()
        record = host.ports.metadata.get_video(info.key)
        if record is not None and record.etag == info.etag and record.result_key \
                and record.status in ("done", "error"):
            try:
                doc: dict[str, Any] = json.loads(host.ports.output.get_bytes(record.result_key))
                return doc
            except ObjectNotFoundError:  # deleted since: compute it again
                pass
        result = self._run(info)["result"]
        if result is None:
            raise ApiError(409, "replaced", f"{info.key!r} changed while it was read; ask again")
        found: dict[str, Any] = result
        return found


def _bearer(headers: Mapping[str, str]) -> str:
    header = _header(headers, "Authorization")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def _result_of(host: FunctionHost, runs: list[tuple[str, Body]]) -> dict[str, Any] | None:
    """The result document the publish stage received (None: the content was replaced
    before it was read, and nothing was published)."""
    for name, body in reversed(runs):
        if name == "publish":
            if "result" in body:
                doc: dict[str, Any] = body["result"]
                return doc
            loaded: dict[str, Any] = json.loads(host.ports.stage1.get_bytes(
                str(body["result_key"])))
            return loaded
    return None


# ---- the process's functions, as the template's `handle` calls them -----------------------

_BUILDING = threading.Lock()


@functools.cache
def _from_environment() -> OpenFaasFunctions:
    settings = settings_with_secrets(Settings())
    configure(settings.log_level, settings.log_format)
    return OpenFaasFunctions(settings)


def _call(pick: Callable[[OpenFaasFunctions], Handler], event: FunctionEvent,
          context: FunctionContext) -> Response:
    """Call one of this process's functions, built on the first call (the template imports
    the handler before any request; a container serves many). A settings error answers
    every request with a 500 and says what is wrong in the log, not to the client."""
    try:
        with _BUILDING:
            functions = _from_environment()
    except (ValidationError, FacereelError) as exc:
        problem = config_error(exc) if isinstance(exc, ValidationError) else exc
        log.error("function misconfigured (%s): %s", problem.code, problem.message)
        return respond(500, error_body("config_error", "the function is misconfigured; its "
                                       "log says more"))
    return pick(functions)(event, context)


def face_recognition(event: FunctionEvent, context: FunctionContext) -> Response:
    """`handle` of the face-recognition function."""
    return _call(lambda f: f.face_recognition, event, context)


def face_recognition_http(event: FunctionEvent, context: FunctionContext) -> Response:
    """`handle` of the face-recognition-http function."""
    return _call(lambda f: f.face_recognition_http, event, context)
