"""Issue 11 on the live API: bodies are read whole or refused (422 naming the field), PUT
never creates, enrolment answers per photo, never takes over another identity silently, and a
stranger a result shows can be enrolled from its crop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facereel.app.recognition import open_gallery
from facereel.core.gallery_io import read_gallery_file
from tests.support.live_api import AUTH, Live, frame_of, jpeg, wait_job


def _error(response: Any) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def test_unknown_fields_are_refused_naming_them(live: Live) -> None:
    client = live.client
    cases = [
        ("POST", "/v1/people", {"name": "g", "major": "cs"}, "body.major"),
        ("PATCH", "/v1/people/president_trump", {"year": "x"}, "body.year"),
        ("PUT", "/v1/people/president_trump", {"metadata": {}, "major": "cs"}, "body.major"),
        ("POST", "/v1/recognize", {"bucket": "input", "key": "a.mp4", "wait": 1}, "body.wait"),
        ("POST", "/v1/session", {"key": "key-one"}, "body.key"),
    ]
    for method, path, body, field in cases:
        status, code, message = _error(client.request(method, path, json=body, headers=AUTH))
        assert (status, code) == (422, "invalid_request"), (path, message)
        assert f"{field}: unknown field" in message, message
    assert client.get("/v1/people/g", headers=AUTH).status_code == 404, "nothing created"


def test_put_on_an_unknown_name_is_404_and_creates_nobody(live: Live) -> None:
    response = live.client.put("/v1/people/Nobody Yet", json={"metadata": {"a": 1}},
                               headers=AUTH)
    assert _error(response)[:2] == (404, "not_found")
    assert live.client.get("/v1/people/Nobody Yet", headers=AUTH).status_code == 404


def _example_of(content: dict[str, Any], schemas: dict[str, Any]) -> Any:
    """The example a request body documents: its own, or its schema's."""
    if "example" in content:
        return content["example"]
    schema = content["schema"]
    refs = [schema, *schema.get("anyOf", [])]
    names = [r["$ref"].rsplit("/", 1)[1] for r in refs if "$ref" in r]
    return next((schemas[n]["examples"] for n in names if schemas[n].get("examples")), None)


def test_every_route_with_a_body_documents_an_example(live: Live) -> None:
    schema = live.app.openapi()
    documented = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for kind, content in operation.get("requestBody", {}).get("content", {}).items():
                example = _example_of(content, schema["components"]["schemas"])
                assert example, f"{method} {path} ({kind}): no example body"
                documented += 1
    assert documented >= 9


@pytest.fixture
def without_mr_bean(live: Live, cse546: Path) -> Iterator[None]:
    """mr_bean forgotten for one test, then his faces and record restored."""
    client = live.client
    saved = client.get("/v1/people/mr_bean", headers=AUTH).json()
    assert client.delete("/v1/people/mr_bean", headers=AUTH).status_code == 204
    try:
        yield
    finally:
        for name in ("Rowan", "Rowan Atkinson"):
            client.delete(f"/v1/people/{name}", headers=AUTH)
        restored = open_gallery(live.settings)
        restored.merge(read_gallery_file(cse546 / "encoding",
                                         live.settings.recognition.embedder, 128))
        restored.save(live.settings.storage.gallery_path)
        client.put("/v1/people/mr_bean", json={"metadata": saved["metadata"]}, headers=AUTH)


def _enrol(live: Live, name: str, files: list[tuple[str, bytes]], query: str = "") -> Any:
    return live.client.post(f"/v1/people/{name}/faces{query}", headers=AUTH,
                            files=[("files", (n, data, "image/jpeg")) for n, data in files])


@pytest.mark.usefixtures("without_mr_bean")
def test_enrolment_answers_per_photo_and_refuses_taking_over_an_identity(live: Live) -> None:
    frame = frame_of(live, "mr_bean").read_bytes()
    mixed = _enrol(live, "Rowan", [("bean.jpg", frame), ("notes.jpg", b"plain text\n" * 40),
                                   ("wall.jpg", jpeg())])
    assert mixed.status_code == 200, mixed.text
    outcomes = mixed.json()["outcomes"]
    assert [(o["image"], o["ok"]) for o in outcomes] == \
        [("bean.jpg", True), ("notes.jpg", False), ("wall.jpg", False)]
    assert "expected image" in outcomes[1]["message"] and "no face" in outcomes[2]["message"]
    refused = _enrol(live, "Rowan Atkinson", [("again.jpg", frame)])
    status, code, message = _error(refused)
    assert (status, code) == (409, "matches_other_person") and "'Rowan'" in message
    assert live.client.get("/v1/people/Rowan Atkinson", headers=AUTH).status_code == 404
    forced = _enrol(live, "Rowan Atkinson", [("again.jpg", frame)], "?force=true")
    assert forced.status_code == 200 and forced.json()["enrolled"] == 1
    more_of_him = _enrol(live, "Rowan", [("again.jpg", frame)], "?force=true")
    assert more_of_him.json()["outcomes"][0]["ok"], "more photos of the same person are fine"


@pytest.mark.usefixtures("without_mr_bean")
def test_a_stranger_of_a_result_is_enrolled_from_its_crop(live: Live,
                                                          clips: dict[str, Path]) -> None:
    client = live.client
    data = clips["test_2"].read_bytes()
    created = client.post("/v1/videos", files={"file": ("bean-stranger.mp4", data)},
                          headers=AUTH)
    result = wait_job(live, created.json()["job"])["result"]
    assert result["people"] == [] and result["strangers"], result
    stranger = max(result["strangers"], key=lambda s: s["frames"])
    assert client.get(f"/v1/faces/{stranger['face']}", headers=AUTH).status_code == 200
    body = {"video": "bean-stranger.mp4", "track_id": stranger["track_id"]}
    enrolled = client.post("/v1/people/Rowan/strangers", json=body, headers=AUTH)
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.json()["enrolled"] == 1
    assert client.get("/v1/people/Rowan", headers=AUTH).json()["faces"] == 1
    frame = frame_of(live, "mr_bean")
    named = client.post("/v1/images", headers=AUTH,
                        files={"inputFile": (frame.name, frame.read_bytes(), "image/jpeg")})
    assert named.text == f"{frame.name}:Rowan", "the crop's face is recognisable"
    for wrong, status in [({**body, "track_id": "999"}, 404),
                          ({**body, "video": "never-uploaded.mp4"}, 404),
                          ({**body, "video": "../x.mp4"}, 400)]:
        assert client.post("/v1/people/Rowan/strangers", json=wrong,
                           headers=AUTH).status_code == status, wrong
