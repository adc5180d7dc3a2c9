"""Attacks on the HTTP API's door, on a real uvicorn over real sockets (127.0.0.1), each bounded
in size and time: nothing is read before the key is checked, no body is read past its limit,
a session cookie cannot be used from another site or after logging out, and connections that
never finish their headers cannot deny service to others."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from facereel.config import Settings
from facereel.http.connections import PendingHeaders
from tests.support.api_server import ApiServer, api_server, read_response

KEY = "door-key"
GB = 1 << 30


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    settings = Settings(data_dir=tmp_path / "data", api_keys=KEY, max_video_mb=1, max_image_mb=1)
    with api_server(settings, PendingHeaders(timeout_s=1.0, limit=64)) as running:
        yield running


def _spooled(server: ApiServer) -> list[Path]:
    uploads = server.services.settings.data_dir / "uploads"
    return list(uploads.rglob("*")) if uploads.exists() else []


def test_a_huge_body_without_a_key_is_refused_before_a_byte_is_read(
        server: ApiServer, security_report: dict[str, Any]) -> None:
    for path, kind in (("/v1/recognize", "application/json"),
                       ("/v1/videos", "multipart/form-data; boundary=x")):
        sock = server.connect()
        server.request_head(sock, "POST", path, {"Content-Length": str(GB),
                                                 "Content-Type": kind})
        sock.sendall(b"{" * 1000)  # 1 KB of the announced gigabyte, then nothing
        status, raw = read_response(sock)
        sock.close()
        assert status == 401 and b"unauthorized" in raw, raw
    assert _spooled(server) == [], "nothing was spooled to disk"
    security_report["1 GB body without a key"] = "401 after its headers, nothing read or spooled"


def test_a_chunked_body_without_a_key_is_refused_at_its_headers(server: ApiServer) -> None:
    sock = server.connect()
    server.request_head(sock, "POST", "/v1/videos", {
        "Transfer-Encoding": "chunked", "Content-Type": "multipart/form-data; boundary=x"})
    status, _ = read_response(sock)  # answered with no body chunk sent at all
    sock.close()
    assert status == 401


def test_a_declared_size_over_the_limit_is_413_before_reading(server: ApiServer) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    for path, size in (("/v1/videos", 700 << 20), ("/v1/images", 2 * GB),
                       ("/v1/session", 512 << 20), ("/v1/people", 1 << 20)):
        sock = server.connect()
        server.request_head(sock, "POST", path, {**auth, "Content-Length": str(size),
                                                 "Content-Type": "application/json"})
        status, raw = read_response(sock)
        sock.close()
        assert status == 413 and b"too_large" in raw, (path, raw)


def test_a_chunked_body_is_stopped_at_the_limit(server: ApiServer) -> None:
    sock = server.connect()
    server.request_head(sock, "POST", "/v1/videos", {
        "Authorization": f"Bearer {KEY}", "Transfer-Encoding": "chunked",
        "Content-Type": "multipart/form-data; boundary=x"})
    part = (b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n'
            b"Content-Type: video/mp4\r\n\r\n")
    sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
    chunk = b"\x00" * 65536
    sent = 0
    try:
        while sent < 8 << 20:  # up to 8 MB against a 1 MB limit: must be cut long before
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, raw = read_response(sock)
    sock.close()
    assert status == 413 and b"1114112 bytes" in raw, raw  # 1 MB + 64 KB of framing
    assert _spooled(server) == [], "the partial upload was removed"


def test_json_bodies_are_capped_small(server: ApiServer) -> None:
    url = f"http://{server.host}:{server.port}"
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        big = {"name": "x", "metadata": {"note": "y" * (100 << 10)}}
        assert client.post("/v1/people", json=big).status_code == 413
        assert client.post("/v1/session", json={"api_key": "k" * (100 << 10)}).status_code == 413


def test_a_stalled_body_times_out(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", api_keys=KEY, body_timeout=1.0)
    with api_server(settings) as running:
        sock = running.connect()
        running.request_head(sock, "POST", "/v1/people", {
            "Authorization": f"Bearer {KEY}", "Content-Length": "100",
            "Content-Type": "application/json"})
        sock.sendall(b'{"name": ')  # then silence
        started = time.monotonic()
        status, _ = read_response(sock)
        sock.close()
    assert status == 408 and time.monotonic() - started < 10


def test_the_session_cookie_cannot_be_used_cross_site_or_after_logout(server: ApiServer) -> None:
    url = f"http://{server.host}:{server.port}"
    own = {"Origin": url}
    with httpx.Client(base_url=url, headers=own) as browser:
        assert browser.post("/v1/session", json={"api_key": KEY}).status_code == 204
        cookie = browser.cookies["facereel_session"]
        assert browser.post("/v1/people", json={"name": "ours"}).status_code == 201
    for origin in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/x"}, {}):
        with httpx.Client(base_url=url, cookies={"facereel_session": cookie},
                          headers=origin) as forged:
            answer = forged.post("/v1/people", json={"name": "planted"})
            assert answer.status_code == 403, origin
            assert forged.get("/v1/people").status_code == 200, "reading is not forgeable"
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as admin:
        names = [p["name"] for p in admin.get("/v1/people").json()]
        assert "planted" not in names and "ours" in names
    with httpx.Client(base_url=url, headers=own, cookies={"facereel_session": cookie}) as browser:
        assert browser.delete("/v1/session").status_code == 204
        assert browser.get("/v1/people").status_code == 401, "logout revoked the session"


def test_connections_that_never_finish_their_headers_cannot_deny_service(
        server: ApiServer, security_report: dict[str, Any]) -> None:
    idle = []
    for _ in range(200):  # over three times the pending limit of this server (64)
        sock = server.connect()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
        idle.append(sock)
    started = time.monotonic()
    answer = httpx.get(f"http://{server.host}:{server.port}/healthz", timeout=10)
    assert answer.status_code == 200 and time.monotonic() - started < 5
    assert server.pending.closed_for_room >= 200 - 64, "the oldest waiting ones were closed"
    latency = time.monotonic() - started
    time.sleep(1.5)  # past the header timeout: the rest are closed too
    assert len(server.pending.waiting) == 0
    security_report["200 connections with unfinished headers (limit 64)"] = {
        "healthz_seconds": round(latency, 3), "closed_for_room": server.pending.closed_for_room,
        "closed_for_timeout": server.pending.closed_for_timeout}
    for sock in idle:
        sock.close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of the test's own (mounting needs root, as the CI machine has)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_507_not_500(tiny_disk: Path, clips: dict[str, Path],
                                    security_report: dict[str, Any]) -> None:
    settings = Settings(data_dir=tiny_disk / "data", api_keys=KEY)
    with api_server(settings) as running:
        url = f"http://{running.host}:{running.port}"
        filler = tiny_disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as handle:
            while True:
                handle.write(b"\0" * 65536)  # until the disk is full
                handle.flush()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as client:
            person = client.post("/v1/people", json={"name": "Ada", "metadata": {"x": "y" * 4000}})
            head = clips["test_0"].read_bytes()[:65536]  # sent whole before the server answers
            video = client.post("/v1/videos", files={"file": ("t.mp4", head)})
            assert (person.status_code, video.status_code) == (507, 507), (person.text, video.text)
            assert video.json()["error"]["code"] == "storage_full"
            filler.unlink()
            assert client.post("/v1/people", json={"name": "Ada"}).status_code == 201
    security_report["full disk"] = "POST /v1/people and /v1/videos 507, then 201 once freed"
