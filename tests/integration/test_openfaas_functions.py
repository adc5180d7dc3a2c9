"""The OpenFaaS functions called in-process with the template's event/context: the pipeline in
one invocation, the on-demand answer read from what was published, and every refusal costing
no storage request (the input bucket is a real local HTTP server that counts requests)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from facereel.config import Settings
from facereel.deploy.openfaas import MAX_BODY, OpenFaasFunctions
from facereel.ports.metadata import read_people_json
from facereel.ports.metadata.sqlite import SqliteMetadata
from tests.support.openfaas_gateway import Context, Event

KEY = "k-one"


def event(body: Any, key: str | None = KEY, method: str = "POST") -> Event:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    return Event(data, headers, method)


def error_of(answer: dict[str, Any]) -> tuple[int, str]:
    assert answer["headers"]["Content-Type"] == "application/json"
    return answer["statusCode"], answer["body"]["error"]["code"]


@pytest.fixture
def functions(settings: Settings, tmp_path: Path, cse546: Path) -> OpenFaasFunctions:
    local = settings.with_overrides(data_dir=tmp_path, gallery=settings.storage.gallery_path,
                                    metadata_db=tmp_path / "meta.db", api_keys=f"{KEY},k-two")
    SqliteMetadata(local.storage.metadata_path).put_people(
        read_people_json(cse546 / "student_data.json"))
    return OpenFaasFunctions(local)


def test_one_invocation_runs_every_stage_and_on_demand_reads_the_published_result(
        functions: OpenFaasFunctions, clips: dict[str, Path]) -> None:
    ports = functions.host().ports
    ports.input.put_file("talks/talk.mp4", clips["test_7"])
    request = {"bucket": "input", "key": "talks/talk.mp4"}
    answer = functions.face_recognition(event(request), Context())
    assert answer["statusCode"] == 200, answer
    summary = answer["body"]
    assert summary["stages"] == ["split", "recognize", "publish", "remember"]
    assert summary["status"] == "ok"
    assert ports.memory.get("talks/talk.mp4") is not None, "its faces are remembered"
    assert summary["result"]["people"][0]["person"] == "morgan_freeman"
    published = json.loads(ports.output.get_bytes("talks/talk.mp4.json"))
    assert published == summary["result"]
    row = ports.metadata.get_video("talks/talk.mp4")
    assert row is not None and row.status == "done"

    on_demand = functions.face_recognition_http(event(request, key="k-two"), Context())
    assert on_demand["statusCode"] == 200 and on_demand["body"] == published
    assert ports.metadata.get_video("talks/talk.mp4") == row, "read, not run again"

    ports.input.put_file("talks/talk.mp4", clips["test_0"])  # new content, same name
    fresh = functions.face_recognition_http(event(request), Context())
    assert fresh["body"]["people"][0]["person"] == "president_trump"


class CountingS3(BaseHTTPRequestHandler):
    """An S3 endpoint that has no objects and counts every request it gets."""

    requests: ClassVar[list[str]] = []

    def _missing(self) -> None:
        self.requests.append(f"{self.command} {self.path}")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._missing()

    def do_GET(self) -> None:
        self._missing()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def counted(settings: Settings, tmp_path: Path) -> Iterator[tuple[OpenFaasFunctions, list[str]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), CountingS3)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    CountingS3.requests.clear()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        remote = settings.with_overrides(
            data_dir=tmp_path, gallery=settings.storage.gallery_path, api_keys=KEY,
            aws_access_key="x", aws_secret_key="y",
            input={"backend": "s3", "endpoint": endpoint, "name": "videos"})
        yield OpenFaasFunctions(remote), CountingS3.requests
    finally:
        server.shutdown()
        thread.join()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic azEtb25lOg=="},
                                     {"Authorization": f"Bearer {KEY}x"}])
def test_no_valid_key_is_401_before_anything_is_read(
        counted: tuple[OpenFaasFunctions, list[str]], headers: dict[str, str]) -> None:
    functions, requests = counted
    body = json.dumps({"bucket": "videos", "key": "clip.mp4"}).encode()
    for handle in (functions.face_recognition, functions.face_recognition_http):
        answer = handle(Event(body, headers), Context())
        assert error_of(answer) == (401, "unauthorized")
        assert answer["headers"]["WWW-Authenticate"].startswith("Bearer")
    assert requests == [], "no storage request without a valid key"


def test_bad_requests_are_refused_before_anything_is_read(
        counted: tuple[OpenFaasFunctions, list[str]]) -> None:
    functions, requests = counted
    refusals: list[tuple[Event, int, str, str]] = [
        (event({"bucket": "videos", "key": "a.mp4"}, method="GET"), 405, "method_not_allowed",
         "POST"),
        (event(b"{not json"), 400, "invalid_request", "not JSON"),
        (event(b"\xff\xfe"), 400, "invalid_request", "not JSON"),
        (event(["videos", "a.mp4"]), 400, "invalid_request", "JSON object"),
        (event({"bucket": "videos", "key": "a.mp4", "callback": "x", "acl": 1}), 400,
         "invalid_request", "unknown fields: acl, callback"),
        (event({"bucket": "videos"}), 400, "invalid_request", "key: required"),
        (event({"bucket": "videos", "key": 7}), 400, "invalid_request", "key: required"),
        (event({"bucket": "elsewhere", "key": "a.mp4"}), 404, "unknown_bucket", "'videos'"),
        (event({"bucket": "videos", "key": "../a.mp4"}), 400, "invalid_key", "'..'"),
        (event({"bucket": "videos", "key": "/etc/passwd"}), 400, "invalid_key", "absolute"),
        (event(b" " * (MAX_BODY + 1)), 413, "too_large", str(MAX_BODY)),
    ]
    for request, status, code, said in refusals:
        answer = functions.face_recognition(request, Context())
        assert error_of(answer) == (status, code), (request, answer)
        assert said in answer["body"]["error"]["message"]
    assert requests == []
    answer = functions.face_recognition_http(event({"bucket": "videos", "key": "a.mp4"}),
                                             Context())
    assert error_of(answer) == (404, "object_not_found")
    assert requests == ["HEAD /videos/a.mp4"], "a valid request reads the object's head"


def test_a_function_without_keys_refuses_everyone(settings: Settings, tmp_path: Path) -> None:
    functions = OpenFaasFunctions(settings.with_overrides(data_dir=tmp_path, api_keys=""))
    answer = functions.face_recognition(event({"bucket": "input", "key": "a.mp4"}, key=""),
                                        Context())
    assert error_of(answer) == (401, "unauthorized")
