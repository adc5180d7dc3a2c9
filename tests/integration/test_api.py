"""The HTTP API through FastAPI's TestClient, on the real composition `facereel up` serves:
embedded ports, the image tier with a real app-tier worker process, a pipeline worker thread."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facereel.app.recognition import open_gallery
from facereel.config import Settings
from facereel.core.gallery_io import read_gallery_file
from facereel.errors import ConfigError
from facereel.http.server import HttpTier, check_exposure
from facereel.imagetier.client import ImageTierClient, ImageTierTimeoutError
from tests.support.bad_inputs import _png_with_size
from tests.support.live_api import AUTH, KEY, Live, frame_of, jpeg, wait_job
from tests.support.stages import ports_of

# ---- authentication ------------------------------------------------------------------------

def _concrete(path: str) -> str:
    return path.replace("{video:path}", "clip.mp4").replace("{key:path}", "a/track000-shot00.jpg")\
        .replace("{job_id}", "0" * 16).replace("{name}", "someone")


def all_routes(live: Live) -> list[tuple[str, str]]:
    """Every route the API documents, plus the page, its alias and the documents."""
    paths = live.app.openapi()["paths"]
    routes = [(method.upper(), _concrete(path)) for path, ops in paths.items() for method in ops]
    return [*routes, ("GET", "/"), ("POST", "/"), ("GET", "/docs"), ("GET", "/openapi.json")]


def test_healthz_needs_no_key(live: Live) -> None:
    assert live.client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic a2V5LW9uZTo="},
                                     {"Cookie": "facereel_session=wrong"}])
def test_every_other_route_answers_401_without_a_valid_key(live: Live,
                                                           headers: dict[str, str]) -> None:
    routes = [r for r in all_routes(live) if r[1] != "/healthz"]
    assert len(routes) >= 20
    client = TestClient(live.app)  # no cookies carried over from other tests
    for method, path in routes:
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        if path != "/":  # the page itself answers 401 with its login form
            assert response.json()["error"]["code"] == "unauthorized", (method, path)


def test_both_keys_work_and_the_session_cookie_logs_in(live: Live) -> None:
    for key in ("key-one", "key-two"):
        assert live.client.get("/v1/status", headers={"Authorization": f"Bearer {key}"}
                               ).status_code == 200
    # a browser sends its page's origin with every request the page makes
    browser = TestClient(live.app, headers={"Origin": "http://testserver"})
    assert browser.get("/").status_code == 401
    assert browser.post("/v1/session", json={"api_key": "nope"}).status_code == 401
    assert browser.post("/v1/session", json={"api_key": KEY}).status_code == 204
    cookie = browser.cookies["facereel_session"]
    assert KEY not in cookie, "the cookie holds a random session token, not the key"
    assert live.client.get("/v1/status", headers={"Authorization": f"Bearer {cookie}"}
                           ).status_code == 401
    page = browser.get("/")
    assert page.status_code == 200 and 'id="upload-input"' in page.text
    status = browser.get("/v1/status").json()
    assert status["workers"] == {"pipeline": 1, "app": 1}
    assert set(status["queues"]) == {"split", "analyze", "recognize", "publish", "remember",
                                     "images"}
    assert browser.delete("/v1/session").status_code == 204
    assert browser.get("/v1/status").status_code == 401
    stolen = TestClient(live.app, cookies={"facereel_session": cookie})
    assert stolen.get("/v1/status").status_code == 401, "logging out revoked the session"


def test_an_open_api_is_refused_off_loopback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="without API keys"):
        check_exposure(Settings(data_dir=tmp_path, host="0.0.0.0"))
    check_exposure(Settings(data_dir=tmp_path, host="0.0.0.0", api_keys="k"))
    check_exposure(Settings(data_dir=tmp_path, host="127.0.0.1"))


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    first = HttpTier(Settings(data_dir=tmp_path, port=0))
    # asyncio turns Nagle off on accepted connections only for a socket that says it is TCP
    assert first.socket.proto == socket.IPPROTO_TCP
    port = int(first.socket.getsockname()[1])
    try:
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            HttpTier(Settings(data_dir=tmp_path, port=port))
    finally:
        first.socket.close()


# ---- the image web tier --------------------------------------------------------------------

def test_images_answer_like_the_original_web_tier(live: Live) -> None:
    for path, person in live.frames:
        files = {"inputFile": (path.name, path.read_bytes(), "image/jpeg")}
        response = live.client.post("/v1/images", files=files, headers=AUTH)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == f"{path.name}:{person}"


def test_root_alias_and_json_answers(live: Live) -> None:
    path = frame_of(live, "president_biden")
    files = {"inputFile": (path.name, path.read_bytes(), "image/jpeg")}
    assert live.client.post("/", files=files, headers=AUTH).text == f"{path.name}:president_biden"
    doc = live.client.post("/v1/images", files={"file": (path.name, path.read_bytes())},
                           headers={**AUTH, "Accept": "application/json"}).json()
    assert doc["status"] == "ok" and doc["video"] == path.name
    assert doc["people"][0]["person"] == "president_biden"
    assert doc["people"][0]["metadata"]["major"] == "history"


def test_an_image_the_tier_cannot_use_is_an_error_not_unknown(live: Live,
                                                              tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    _png_with_size(huge, 30000, 30000)  # 900 megapixels declared, a few bytes sent
    files = {"inputFile": ("huge.png", huge.read_bytes(), "image/png")}
    text = live.client.post("/v1/images", files=files, headers=AUTH)
    assert text.status_code == 413 and text.text.startswith("huge.png: error (too_large)")
    doc = live.client.post("/v1/images", files=files,
                           headers={**AUTH, "Accept": "application/json"})
    assert doc.status_code == 413 and doc.json()["error"]["code"] == "too_large"


def test_an_image_of_nobody_is_unknown(live: Live) -> None:
    files = {"inputFile": ("wall.jpg", jpeg(), "image/jpeg")}
    assert live.client.post("/v1/images", files=files, headers=AUTH).text == "wall.jpg:unknown"


def test_bad_uploads_are_refused_with_json_errors(live: Live, clips: dict[str, Path]) -> None:
    post = live.client.post
    cases = [
        ("/v1/images", {"inputFile": ("notes.jpg", b"just some text\n" * 20)}, 415,
         "unsupported_type"),
        ("/v1/images", {"inputFile": ("photo.txt", jpeg())}, 415, "wrong_extension"),
        ("/v1/images", {"inputFile": ("clip.mp4", clips["test_0"].read_bytes())}, 415,
         "unsupported_type"),
        ("/v1/images", {"inputFile": ("big.jpg", jpeg() + bytes(3 * 2**20))}, 413, "too_large"),
        ("/v1/images", {"inputFile": ("empty.jpg", b"")}, 400, "empty_file"),
        ("/v1/images", {"other": ("a.jpg", jpeg())}, 400, "invalid_request"),
        ("/v1/videos", {"file": ("movie.mp4", b"\x00" * 4096)}, 415, "unsupported_type"),
        ("/v1/videos", {"file": ("huge.mp4", clips["test_0"].read_bytes() + bytes(6 * 2**20))},
         413, "too_large"),
    ]
    for path, files, status, code in cases:
        response = post(path, files=files, headers=AUTH)
        assert response.status_code == status, (path, files.keys(), response.text)
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["message"]
    assert live.services.ports.input.head("movie.mp4") is None
    assert live.services.ports.input.head("huge.mp4") is None


# ---- videos through the pipeline ------------------------------------------------------------

def test_video_upload_job_result_and_face_crop(live: Live, clips: dict[str, Path]) -> None:
    files = {"file": ("test_1.mp4", clips["test_1"].read_bytes(), "video/mp4")}
    created = live.client.post("/v1/videos", files=files, headers=AUTH)
    assert created.status_code == 202 and created.json()["status"] in ("queued", "running")
    job = wait_job(live, created.json()["job"])
    assert job["status"] == "done" and job["progress"] == 1.0
    person = job["result"]["people"][0]
    assert person["person"] == "president_biden"
    assert person["metadata"]["major"] == "history"
    result = live.client.get("/v1/results/test_1.mp4", headers=AUTH).json()
    assert result["people"][0]["person"] == "president_biden"
    face = live.client.get(f"/v1/faces/{person['face']}", headers=AUTH)
    assert face.status_code == 200 and face.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(face.content)).size[0] > 20
    listed = live.client.get("/v1/jobs", headers=AUTH).json()
    assert created.json()["job"] in [j["job"] for j in listed]


def test_recognize_on_demand_sync_and_async(live: Live, clips: dict[str, Path]) -> None:
    live.services.ports.input.put_file("demand/test_7.mp4", clips["test_7"])
    bucket = live.services.ports.input.bucket
    body = {"bucket": bucket, "key": "demand/test_7.mp4"}
    doc = live.client.post("/v1/recognize", json=body, headers=AUTH).json()
    assert doc["status"] == "ok" and doc["people"][0]["person"] == "morgan_freeman"
    queued = live.client.post("/v1/recognize?async=true", json=body, headers=AUTH)
    assert queued.status_code == 202
    assert wait_job(live, queued.json()["job"])["status"] == "done"
    refusals = [({"bucket": "elsewhere", "key": "demand/test_7.mp4"}, 404, "unknown_bucket"),
                ({"bucket": bucket, "key": "../outside.mp4"}, 400, "invalid_key"),
                ({"bucket": bucket, "key": "/etc/passwd"}, 400, "invalid_key"),
                ({"bucket": bucket, "key": "missing.mp4"}, 404, "object_not_found"),
                ({"key": "x.mp4"}, 422, "invalid_request")]
    for request, status, code in refusals:
        response = live.client.post("/v1/recognize", json=request, headers=AUTH)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_recognize_reads_only_the_input_bucket(live: Live, clips: dict[str, Path]) -> None:
    """Regression (issue 8 said it took any bucket name): another bucket, even one facereel
    uses, is 404 and starts nothing, though the key exists in the input bucket."""
    live.services.ports.input.put_file("only/test_7.mp4", clips["test_7"])
    before = live.client.get("/v1/jobs", headers=AUTH).json()
    ports = live.services.ports
    for bucket in ("elsewhere", ports.output.bucket, ports.stage1.bucket, ""):
        response = live.client.post("/v1/recognize", json={"bucket": bucket,
                                                           "key": "only/test_7.mp4"},
                                    headers=AUTH)
        assert (response.status_code, response.json()["error"]["code"]) == \
            (404, "unknown_bucket"), bucket
    assert live.client.get("/v1/jobs", headers=AUTH).json() == before, "no job started"
    assert ports.metadata.get_video("only/test_7.mp4") is None, "nothing queued"


def test_a_broken_video_fails_its_job_with_the_reason(live: Live,
                                                      clips: dict[str, Path]) -> None:
    truncated = clips["test_2"].read_bytes()[:20_000]
    created = live.client.post("/v1/videos", files={"file": ("cut.mp4", truncated)},
                               headers=AUTH)
    job = wait_job(live, created.json()["job"])
    assert job["status"] == "failed" and job["error"]["message"]
    assert job["result"]["status"] == "error"


# ---- people --------------------------------------------------------------------------------

def test_people_are_listed_created_edited_and_deleted(live: Live) -> None:
    client = live.client
    people = {p["name"]: p for p in client.get("/v1/people", headers=AUTH).json()}
    assert people["president_trump"]["faces"] >= 1
    assert people["president_trump"]["metadata"]["major"] == "physics"
    created = client.post("/v1/people", json={"name": "Ada Lovelace",
                                              "metadata": {"major": "math", "year": "1843"}},
                          headers=AUTH)
    assert created.status_code == 201 and created.json()["faces"] == 0
    assert client.post("/v1/people", json={"name": "Ada Lovelace"},
                       headers=AUTH).status_code == 409
    patched = client.patch("/v1/people/Ada Lovelace",
                           json={"metadata": {"year": "senior", "major": None}}, headers=AUTH)
    assert patched.json()["metadata"] == {"year": "senior"}
    replaced = client.put("/v1/people/Ada Lovelace", json={"metadata": {"major": "poetry"}},
                          headers=AUTH)
    assert replaced.json()["metadata"] == {"major": "poetry"}
    assert client.delete("/v1/people/Ada Lovelace", headers=AUTH).status_code == 204
    assert client.get("/v1/people/Ada Lovelace", headers=AUTH).status_code == 404
    assert client.delete("/v1/people/Ada Lovelace", headers=AUTH).status_code == 404
    for name in ("Grace", "Linus"):
        assert client.post("/v1/people", json={"name": name}, headers=AUTH).status_code == 201
    several = client.delete("/v1/people?name=Grace&name=Linus&name=Ghost", headers=AUTH)
    assert several.json() == {"deleted": ["Grace", "Linus"], "not_found": ["Ghost"]}
    assert client.delete("/v1/people", headers=AUTH).status_code == 422  # no delete-everyone
    assert client.post("/v1/people", json={"name": "bad\u0007name"},
                       headers=AUTH).status_code == 400
    assert client.post("/v1/people", json={"name": "x", "metadata": {"name": "y"}},
                       headers=AUTH).status_code == 400


def test_enrolling_from_photos_makes_the_person_recognisable(live: Live, cse546: Path) -> None:
    """Enrol a new person from one frame of a clip whose person we removed first: the image
    tier (a separate process) picks the changed gallery up and answers with the new name."""
    client = live.client
    frame = frame_of(live, "mr_bean")
    saved = client.get("/v1/people/mr_bean", headers=AUTH).json()
    assert client.delete("/v1/people/mr_bean", headers=AUTH).status_code == 204
    files = [("files", ("bean.jpg", frame.read_bytes(), "image/jpeg")),
             ("files", ("wall.jpg", jpeg(), "image/jpeg"))]
    try:
        report = client.post("/v1/people/Rowan/faces", files=files, headers=AUTH).json()
        assert report["enrolled"] == 1
        assert [o["ok"] for o in report["outcomes"]] == [True, False]
        assert "no face" in report["outcomes"][1]["message"]
        nobody = client.post("/v1/people/Nobody/faces", files=[("files", ("w.jpg", jpeg()))],
                             headers=AUTH)
        assert nobody.status_code == 422 and nobody.json()["error"]["code"] == "no_face"
        files_one = {"inputFile": (frame.name, frame.read_bytes(), "image/jpeg")}
        assert client.post("/v1/images", files=files_one,
                           headers=AUTH).text == f"{frame.name}:Rowan"
    finally:
        client.delete("/v1/people/Rowan", headers=AUTH)
        restored = open_gallery(live.settings)
        restored.merge(read_gallery_file(cse546 / "encoding",
                                         live.settings.recognition.embedder, 128))
        restored.save(live.settings.storage.gallery_path)
        client.put("/v1/people/mr_bean", json={"metadata": saved["metadata"]}, headers=AUTH)


# ---- confinement, metrics, documents --------------------------------------------------------

def test_path_traversal_is_refused_and_nothing_lands_outside_the_data_dir(
        live: Live, clips: dict[str, Path]) -> None:
    before = {p for p in live.root.rglob("*") if not p.is_relative_to(live.settings.data_dir)}
    data = clips["test_0"].read_bytes()
    stored = live.client.post("/v1/videos", files={"file": ("../../escape.mp4", data)},
                              headers=AUTH)
    assert stored.status_code == 202 and stored.json()["key"] == "escape.mp4"
    for key in ("../escape.mp4", "/abs.mp4", "a/../../b.mp4", "nul\x00.mp4",
                ".facereel/meta/planted.mp4"):
        response = live.client.post("/v1/videos", files={"file": ("ok.mp4", data)},
                                    data={"key": key}, headers=AUTH)
        assert response.status_code == 400, key
    for path in ("/v1/results/..%2F..%2Fgallery.npz", "/v1/faces/..%2F..%2Fgallery.npz",
                 "/v1/faces/x/../../queues.db", "/v1/results/%2Fetc%2Fpasswd"):
        assert live.client.get(path, headers=AUTH).status_code in (400, 404), path
    image = live.client.post("/v1/images", files={"inputFile": ("../../../up.jpg", jpeg())},
                             headers=AUTH)
    assert image.text == "up.jpg:unknown"
    after = {p for p in live.root.rglob("*") if not p.is_relative_to(live.settings.data_dir)}
    assert after == before
    assert not list(live.root.parent.glob("escape*"))


def test_metrics_and_documents(live: Live) -> None:
    text = live.client.get("/metrics", headers=AUTH).text
    for name in ("facereel_http_requests_total", "facereel_http_request_seconds_bucket",
                 "facereel_queue_messages", "facereel_videos", "facereel_workers",
                 "facereel_image_requests_total", "facereel_autoscaler"):
        assert name in text, name
    assert 'facereel_workers{tier="app"} 1.0' in text
    assert 'facereel_queue_messages{queue="images",state="visible"}' in text
    schema = live.client.get("/openapi.json", headers=AUTH).json()
    for path in ("/v1/recognize", "/v1/videos", "/v1/jobs/{job_id}", "/v1/images",
                 "/v1/people", "/v1/people/{name}/faces", "/healthz", "/metrics"):
        assert path in schema["paths"], path
    docs = live.client.get("/docs", headers=AUTH)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "cdn." not in docs.text and "https://" not in docs.text, "nothing from a CDN"
    script = live.client.get("/docs/swagger-ui-bundle.js", headers=AUTH)
    assert script.status_code == 200 and len(script.content) > 100_000
    assert live.client.get("/docs/swagger-ui-bundle.js").status_code == 401


def test_an_image_nobody_answers_times_out(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    tier = ImageTierClient(settings.storage, ports_of(settings), 0)  # no app-tier worker runs
    try:
        with pytest.raises(ImageTierTimeoutError, match=r"within 0\.3 s"):
            tier.ask("a.jpg", jpeg(), 0.3)
    finally:
        tier.close()
