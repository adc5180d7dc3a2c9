"""The face memory over HTTP, on the real composition `facereel up` serves: POST /v1/search by
person and by photo (multipart or base64 JSON; the photo embedded by the app tier), POST
/v1/forget, key scopes (a read or write key cannot search or forget: 403 before the body is
read), and the audit log naming callers by their key's fingerprint, never the key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from facereel.http.auth import Sessions
from facereel.http.guard import DoorPolicy, RequestGuard
from facereel.memory.search import Searcher
from tests.support.live_api import AUTH, KEY, READER, Live, frame_of, jpeg, wait_job

WRITER = {"Authorization": "Bearer key-two"}  # a bare key: write
READ = {"Authorization": f"Bearer {READER}"}


def _remembered(live: Live, key: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while live.services.ports.memory.get(key) is None:
        assert time.monotonic() < deadline, f"{key} was never remembered"
        time.sleep(0.2)


def _search(live: Live, **body: Any) -> list[dict[str, Any]]:
    response = live.client.post("/v1/search", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["count"] == len(answer["matches"])
    return list(answer["matches"])


def test_search_by_person_and_by_photo_then_forget(live: Live, clips: dict[str, Path]) -> None:
    files = {"file": ("talk.mp4", clips["test_7"].read_bytes(), "video/mp4")}
    job = live.client.post("/v1/videos", files=files, headers=AUTH).json()["job"]
    assert wait_job(live, job)["status"] == "done"
    _remembered(live, "talk.mp4")
    (match,) = _search(live, person="morgan_freeman")
    assert match["video"] == "talk.mp4" and match["distance"] <= 0.6
    face = live.client.get(f"/v1/faces/{match['face']}", headers=AUTH)
    assert face.status_code == 200 and face.headers["content-type"] == "image/jpeg"

    photo = frame_of(live, "morgan_freeman").read_bytes()
    multipart = live.client.post("/v1/search", files={"photo": ("q.jpg", photo, "image/jpeg")},
                                 data={"limit": "5"}, headers=AUTH)
    assert multipart.status_code == 200, multipart.text
    assert [m["video"] for m in multipart.json()["matches"]] == ["talk.mp4"]
    assert [m["video"] for m in _search(live, photo=base64.b64encode(photo).decode())] == [
        "talk.mp4"]

    assert _search(live, person="president_obama") == [], "nothing found: empty, 200"
    unknown = live.client.post("/v1/search", json={"person": "nobody"}, headers=AUTH)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    blank = live.client.post("/v1/search", json={"photo": base64.b64encode(jpeg()).decode()},
                             headers=AUTH)
    assert blank.status_code == 422 and blank.json()["error"]["code"] == "no_face"
    both = live.client.post("/v1/search", json={"person": "x", "photo": "eA=="}, headers=AUTH)
    assert both.status_code == 422

    gone = live.client.post("/v1/forget", json={"video": "talk.mp4"}, headers=AUTH)
    assert gone.status_code == 200 and gone.json()["tracks"] == 1, gone.text
    assert _search(live, person="morgan_freeman") == []
    again = live.client.post("/v1/forget", json={"video": "talk.mp4"}, headers=AUTH)
    assert again.status_code == 404


def test_scopes(live: Live) -> None:
    body = {"person": "morgan_freeman"}
    for headers in (READ, WRITER):
        for path, payload in (("/v1/search", body), ("/v1/forget", {"video": "x.mp4"})):
            refused = live.client.post(path, json=payload, headers=headers)
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json()["error"]["code"] == "forbidden"
    assert live.client.get("/v1/people", headers=READ).status_code == 200
    assert live.client.post("/v1/people", json={"name": "Scoped"},
                            headers=READ).status_code == 403, "read cannot write"
    assert live.client.post("/v1/people", json={"name": "Scoped"},
                            headers=WRITER).status_code == 201, "a bare key writes"
    assert live.client.delete("/v1/people/Scoped", headers=WRITER).status_code == 204
    login = live.client.post("/v1/session", json={"api_key": READER})
    assert login.status_code == 204
    by_cookie = live.client.post("/v1/search", json=body,
                                 headers={"Origin": "http://testserver"})
    assert by_cookie.status_code == 403, "a session has its key's scope"
    live.client.delete("/v1/session", headers={"Origin": "http://testserver"})


def test_a_refused_scope_reads_no_body() -> None:
    """The guard answers 403 from the headers alone: the body is never asked for."""
    sent: list[MutableMapping[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app was reached")

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    guard = RequestGuard(app, DoorPolicy(keys=lambda: [("r", "read"), ("a", "admin")],
                                         sessions=Sessions(), max_video_bytes=1,
                                         max_image_bytes=1))
    scope = {"type": "http", "method": "POST", "path": "/v1/search",
             "headers": [(b"authorization", b"Bearer r"), (b"content-length", b"1000000000")]}
    asyncio.run(guard(scope, receive, send))
    assert sent[0]["status"] == 403
    assert json.loads(sent[1]["body"])["error"]["code"] == "forbidden"


def test_the_audit_log_names_callers_by_fingerprint(live: Live) -> None:
    photo = frame_of(live, "mr_bean").read_bytes()
    enrolled = live.client.post("/v1/people/Audited/faces?force=true", headers=AUTH,
                                files=[("files", ("bean.jpg", photo, "image/jpeg"))])
    assert enrolled.status_code == 200, enrolled.text
    live.client.post("/v1/search", json={"person": "Audited"}, headers=AUTH)
    live.client.post("/v1/forget", json={"person": "Audited"}, headers=AUTH)
    text = live.settings.audit_path.read_text()
    assert KEY not in text and READER not in text
    lines = [json.loads(line) for line in text.splitlines()]
    mine = f"key:{hashlib.sha256(KEY.encode()).hexdigest()[:12]}"
    actions = {(a["action"], a["outcome"]) for a in lines if a["who"] == mine}
    assert {("enrol", "ok"), ("search", "ok"), ("forget", "ok")} <= actions
    assert all(a["via"] == "api" and a["at"].endswith("Z") for a in lines)
    assert "Audited" not in live.services.ports.gallery.load().gallery.people


def test_search_needs_no_snapshot_and_uses_one_when_there_is(live: Live) -> None:
    """The HTTP process searches what the index writer wrote, plus its tail."""
    searcher: Searcher = live.services.memory.searcher
    before = _search(live, person="president_biden")
    live.services.memory.update_index()
    assert searcher.snapshot() is not None
    assert _search(live, person="president_biden") == before
