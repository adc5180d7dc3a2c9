"""Browsing through the HTTP API: `GET /v1/videos` and `GET /v1/results` (filters, cursor
paging that holds while rows are added, every bad cursor a 400), `GET /v1/jobs` by state and
past 500, and the dead letters (listed with their errors, sent back). The app is the real one
on embedded ports with no worker running, so what sits in the queues stays there."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from facereel.app.browse import encode_cursor
from facereel.app.dead_letters import unwrap
from facereel.config import Settings
from facereel.deploy.aws_events import chain_payload
from facereel.http.app import create_app
from facereel.http.routes_browse import ResultStatus, StageName, VideoStatus
from facereel.http.server import build_services
from facereel.http.services import Services
from facereel.pipeline.definition import STAGE_NAMES
from facereel.ports.metadata import RESULT_STATUSES, VIDEO_STATUSES, VideoRecord
from facereel.ports.queue.sqlite import SqliteQueue
from tests.support.stages import ports_of

KEY = "browse-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
T2001 = 978307200.0  # 2001-01-01T00:00:00Z


@dataclass
class Api:
    client: TestClient
    services: Services
    settings: Settings


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("browse") / "data", api_keys=KEY,
                        app_workers_min=0, app_workers_max=0)
    services, tier = build_services(settings, ports_of(settings), lambda: 0)
    try:
        with TestClient(create_app(services)) as client:
            yield Api(client, services, settings)
    finally:
        tier.close()


def put(api: Api, key: str, status: str, at: float, people: list[str] | None = None,
        error: tuple[str, str] = ("", ""), etag: str = "etag") -> None:
    published = f"{key}.json" if status in ("done", "error") else ""
    api.services.ports.metadata.put_video(VideoRecord(key, etag, status, at, published,
                                                      people or [], *error))


def get(api: Api, path: str, **params: Any) -> Any:
    response = api.client.get(path, params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def follow(api: Api, path: str, field: str, **params: Any) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    for _ in range(50):
        doc = get(api, path, **params, cursor=cursor) if cursor else get(api, path, **params)
        pages.append(doc[field])
        cursor = doc["next"]
        if cursor is None:
            return pages
    raise AssertionError("a listing that never ends")


def test_the_routes_take_the_statuses_the_store_knows() -> None:
    assert VideoStatus.__args__ == VIDEO_STATUSES  # type: ignore[attr-defined]
    assert ResultStatus.__args__ == RESULT_STATUSES  # type: ignore[attr-defined]
    assert StageName.__args__ == STAGE_NAMES  # type: ignore[attr-defined]


def test_videos_and_results_page_newest_first_with_filters(api: Api) -> None:
    person = "ada_browse"
    rows = [("lib/a.mp4", "done", 10, [person]), ("lib/b.mp4", "error", 20, []),
            ("lib/c.mp4", "queued", 30, []), ("lib/d.mp4", "dead", 40, []),
            ("lib/e.mp4", "done", 50, [person, "bob_browse"]), ("lib/f.mp4", "done", 60, [])]
    for key, status, minute, people in rows:
        error = ("corrupt_video", "not a video") if status == "error" else ("", "")
        put(api, key, status, T2001 + 60 * minute, people, error)
    window = {"since": "2001-01-01T00:00:00Z", "until": "2001-01-01T02:00:00+01:00"}
    videos = follow(api, "/v1/videos", "videos", limit=4, **window)
    assert [[v["key"] for v in page] for page in videos] == [
        ["lib/f.mp4", "lib/e.mp4", "lib/d.mp4", "lib/c.mp4"], ["lib/b.mp4", "lib/a.mp4"]]
    assert videos[0][1] == {"key": "lib/e.mp4", "etag": "etag", "status": "done",
                            "updated": "2001-01-01T00:50:00.000Z",
                            "people": [person, "bob_browse"], "error": None,
                            "result_key": "lib/e.mp4.json", "result": "/v1/results/lib/e.mp4"}
    assert videos[1][0]["error"] == {"code": "corrupt_video", "message": "not a video"}
    results = [r["key"] for page in follow(api, "/v1/results", "results", limit=2, **window)
               for r in page]
    assert results == ["lib/f.mp4", "lib/e.mp4", "lib/b.mp4", "lib/a.mp4"]
    assert get(api, "/v1/results/", **window)["results"] == get(api, "/v1/results", **window)[
        "results"], "the trailing slash lists too"
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"person": person}, ["lib/e.mp4", "lib/a.mp4"]),
        ({"person": person, "until": "2001-01-01T00:30"}, ["lib/a.mp4"]),
        ({"status": ["dead", "queued"]}, ["lib/d.mp4", "lib/c.mp4"]),
        ({"status": "error"}, ["lib/b.mp4"]),
        ({"since": "2001-01-01T00:40:00Z", "until": "2001-01-01T00:40:00Z"}, ["lib/d.mp4"])]
    for params, expected in cases:
        listed = get(api, "/v1/videos", **{**window, **params})["videos"]
        assert [v["key"] for v in listed] == expected, params


def test_a_page_holds_while_rows_are_added(api: Api) -> None:
    for n in range(6):
        put(api, f"hold/{n}.mp4", "done", T2001 + 86400 + n, ["hold_person"])
    first = get(api, "/v1/results", person="hold_person", limit=4)
    for n in range(3):  # newer results arrive between two pages
        put(api, f"hold/new-{n}.mp4", "done", time.time(), ["hold_person"])
    rest = get(api, "/v1/results", person="hold_person", limit=4, cursor=first["next"])
    keys = [r["key"] for r in first["results"] + rest["results"]]
    assert keys == [f"hold/{n}.mp4" for n in (5, 4, 3, 2, 1, 0)] and rest["next"] is None


def _forged() -> list[str]:
    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    return ["not base64!", "x", b64("not json"), b64("[1, 2]"), b64('{"of": "videos"}'),
            b64('{"of": "videos", "at": "now", "after": "a"}'),
            b64('{"of": "videos", "at": 1e999, "after": "a"}'),
            b64('{"of": "videos", "at": true, "after": "a"}'),
            b64('{"of": "videos", "at": 1, "after": 7}'),
            b64('{"of": "videos", "at": 1, "after": "a", "more": 1}'),
            encode_cursor("results", 1.0, "a"), encode_cursor("jobs", 1.0, "a"),
            base64.urlsafe_b64encode(b"\xff\xfe").decode()]


def test_every_bad_request_is_a_one_line_error(api: Api) -> None:
    for cursor in _forged():
        response = api.client.get("/v1/videos", params={"cursor": cursor}, headers=AUTH)
        assert (response.status_code, response.json()["error"]["code"]) == (
            400, "invalid_cursor"), cursor
    refused = [("/v1/videos", {"cursor": "a" * 5000}, 422), ("/v1/videos", {"limit": 0}, 422),
               ("/v1/videos", {"limit": 501}, 422), ("/v1/videos", {"status": "lost"}, 422),
               ("/v1/results", {"status": "queued"}, 422),
               ("/v1/videos", {"since": "yesterday"}, 422),
               ("/v1/videos", {"person": "p" * 257}, 422), ("/v1/jobs", {"status": "dead"}, 422),
               ("/v1/jobs", {"cursor": encode_cursor("videos", 1.0, "a")}, 400),
               ("/v1/results", {"since": "2002-01-01", "until": "2001-01-01"}, 400),
               ("/v1/dead-letters", {"queue": "images"}, 422),
               ("/v1/dead-letters", {"limit": 501}, 422)]
    for path, params, status in refused:
        response = api.client.get(path, params=params, headers=AUTH)
        assert response.status_code == status, (path, params, response.text)
        assert set(response.json()) == {"error"} and "\n" not in response.json()["error"][
            "message"]
    for method, path in (("GET", "/v1/videos"), ("GET", "/v1/results"), ("GET", "/v1/results/"),
                         ("GET", "/v1/dead-letters"), ("POST", "/v1/dead-letters/redrive")):
        assert api.client.request(method, path).status_code == 401, path


def test_jobs_by_state_and_past_500(api: Api) -> None:
    jobs = api.services.jobs
    mine = {jobs.create(f"jobs/{n}.mp4", "etag").id: n for n in range(520)}
    for n in range(0, 520, 10):
        put(api, f"jobs/{n}.mp4", "done", time.time())
    seen, path, pages = [], "/v1/jobs?limit=500", 0
    while path:
        response = api.client.get(path, headers=AUTH)
        seen += response.json()
        found = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers.get("link", ""))
        path, pages = (found.group(1) if found else ""), pages + 1
    assert pages == 2 and len(seen) == len({j["job"] for j in seen}) >= 520
    assert set(mine) <= {j["job"] for j in seen}
    done, path = [], "/v1/jobs?limit=20&status=done"
    while path:
        response = api.client.get(path, headers=AUTH)
        done += response.json()
        found = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers.get("link", ""))
        path = found.group(1) if found else ""
        assert "status=done" in path or not path, "the next page keeps the filter"
    assert {j["job"] for j in done if j["job"] in mine} == {
        job for job, n in mine.items() if n % 10 == 0}
    assert {j["status"] for j in done} == {"done"}
    queued = get(api, "/v1/jobs", status=["queued", "running"], limit=5)
    assert len(queued) == 5 and {j["status"] for j in queued} == {"queued"}


# ---- dead letters -----------------------------------------------------------------------------
def bury(settings: Settings, stage: str, body: dict[str, Any]) -> None:
    """A message given up at once: delivered once (max_attempts=1), never acknowledged."""
    queue = SqliteQueue(settings.data_dir / "queues.db", stage, visibility_s=0, max_attempts=1)
    queue.send(body)
    assert len(queue.receive()) == 1
    assert queue.receive() == []  # its next delivery would be one too many: dead


def test_dead_letters_listed_with_their_error_and_sent_back(api: Api) -> None:
    ports = api.services.ports
    bury(api.settings, "publish", {"key": "dl/a.mp4", "etag": "e1", "result": {}})
    put(api, "dl/a.mp4", "dead", time.time(), error=("storage_error", "publish: disk gone"),
        etag="e1")
    bury(api.settings, "split", {"key": "dl/b.mp4", "etag": "e2", "size": 1})
    lambda_record = {"version": "1.0", "requestContext": {"condition": "RetriesExhausted"},
                     "requestPayload": chain_payload("recognize", {"key": "dl/c.mp4",
                                                                   "etag": "e3"}, 5),
                     "responsePayload": {"errorType": "MemoryError", "errorMessage": "no room"}}
    bury(api.settings, "recognize", lambda_record)
    listed = get(api, "/v1/dead-letters")["dead_letters"]
    assert [(d["queue"], d["key"], d["attempts"], d["error"]) for d in listed] == [
        ("split", "dl/b.mp4", 1, None),
        ("recognize", "dl/c.mp4", 5, {"code": "stage_failed", "message": "MemoryError: no room"}),
        ("publish", "dl/a.mp4", 1, {"code": "storage_error", "message": "publish: disk gone"})]
    assert listed[1]["body"] == {"key": "dl/c.mp4", "etag": "e3"}, "the message inside"
    assert [d["key"] for d in get(api, "/v1/dead-letters", queue="publish")[
        "dead_letters"]] == ["dl/a.mp4"]
    assert get(api, "/v1/dead-letters", key="dl/b.mp4")["dead_letters"] == [listed[0]]

    sent = api.client.post("/v1/dead-letters/redrive", json={"key": "dl/a.mp4"}, headers=AUTH)
    assert [d["key"] for d in sent.json()["redriven"]] == ["dl/a.mp4"]
    assert ports.metadata.get_video("dl/a.mp4").status == "queued"  # type: ignore[union-attr]
    [again] = ports.queues["publish"].receive()
    assert (again.body["key"], again.attempts) == ("dl/a.mp4", 1)
    everything = api.client.post("/v1/dead-letters/redrive", json={}, headers=AUTH).json()
    assert sorted(d["key"] for d in everything["redriven"]) == ["dl/b.mp4", "dl/c.mp4"]
    assert ports.queues["recognize"].receive()[0].body == {"key": "dl/c.mp4", "etag": "e3"}
    assert get(api, "/v1/dead-letters")["dead_letters"] == []
    assert api.client.post("/v1/dead-letters/redrive", json={"stage": "x"},
                           headers=AUTH).status_code == 422


def test_a_lambda_on_failure_record_is_read_as_the_message_inside() -> None:
    record = {"requestPayload": chain_payload("publish", {"key": "k.mp4"}, 3),
              "responsePayload": {"errorMessage": "boom"}}
    assert unwrap(record) == ({"key": "k.mp4"}, 3, "boom")
    assert unwrap({"key": "k.mp4"}) == ({"key": "k.mp4"}, None, "")
    assert unwrap({"requestPayload": "x"}) == ({"requestPayload": "x"}, None, "")


def test_the_openapi_document_shows_the_browse_routes(api: Api) -> None:
    schema = get(api, "/openapi.json")
    for path in ("/v1/videos", "/v1/results", "/v1/dead-letters", "/v1/dead-letters/redrive"):
        assert path in schema["paths"], path
    assert "/v1/results/" not in schema["paths"]
    parameters = {p["name"] for p in schema["paths"]["/v1/videos"]["get"]["parameters"]}
    assert parameters == {"status", "person", "since", "until", "limit", "cursor"}
    jobs = {p["name"] for p in schema["paths"]["/v1/jobs"]["get"]["parameters"]}
    assert {"status", "cursor", "limit"} <= jobs
    body = schema["components"]["schemas"]["RedriveRequest"]  # test_api_people checks them all
    assert body["examples"][0] == {"queue": "publish", "key": "lectures/test_00.mp4"}


def test_cursor_stays_opaque_and_short(api: Api) -> None:
    key = "deep/" + "é" * 300 + ".mp4"
    put(api, key, "done", T2001 + 2 * 86400, ["long_person"])
    put(api, "deep/next.mp4", "done", T2001 + 2 * 86400 - 1, ["long_person"])
    first = get(api, "/v1/results", person="long_person", limit=1)
    assert first["results"][0]["key"] == key and len(first["next"]) < 1000
    assert get(api, "/v1/results", person="long_person", cursor=first["next"])["results"][0][
        "key"] == "deep/next.mp4"
