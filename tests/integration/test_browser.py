"""The web page in a real browser: headless Debian Chromium driven by Playwright logs in,
uploads a real clip, waits for the result and checks the name shown; enrols a stranger from
its crop; browses past results by person, status and time, follows "More" and opens one.
Screenshots are kept in the artifacts folder. Chromium is installed by the test under CI;
elsewhere, without it, the test is skipped with the reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from facereel.config import Settings
from facereel.pipeline.publishing import result_key
from facereel.ports.metadata import VideoRecord
from tests.conftest import CLIP_PEOPLE, REPO_ROOT
from tests.support.http_service import HttpService
from tests.support.stages import ports_of

CHROMIUM = "/usr/bin/chromium"
CLIP = "test_4"


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run([*sudo, "apt-get", *args], env=env, capture_output=True, text=True,
                          timeout=1200, check=False)


def _install_chromium() -> str:
    install = _apt("install", "-y", "-q", "--no-install-recommends", "chromium")
    if install.returncode != 0:  # a fresh machine may not have read the package lists yet
        _apt("update", "-q")
        install = _apt("install", "-y", "-q", "--no-install-recommends", "chromium")
    if install.returncode != 0:
        pytest.fail(f"could not install Debian's chromium:\n{install.stderr[-2000:]}")
    return CHROMIUM


@pytest.fixture(scope="module")
def chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        return _install_chromium()
    pytest.skip("Debian's chromium is not installed (apt-get install chromium); "
                "CI installs it and runs this test")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, cse546: Path) -> Iterator[HttpService]:
    with HttpService(tmp_path_factory.mktemp("browser") / "data").running(cse546) as service:
        yield service


def artifacts() -> Path:
    folder = Path(os.environ.get("FACEREEL_ARTIFACTS", REPO_ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_log_in_upload_a_clip_and_see_who_is_in_it(chromium: str, service: HttpService,
                                                   clips: dict[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(service.url)
            expect(page.locator("#login-panel")).to_be_visible()
            page.fill("#api-key", "not the key")
            page.click("#login")
            expect(page.locator("#login-error")).not_to_be_empty()
            page.fill("#api-key", service.api_key)
            page.click("#login")
            expect(page.locator("#app")).to_be_visible()
            rows = page.locator("#people .person-row")  # the 8 people and 3 distractors
            expect(rows).to_have_count(11, timeout=30_000)

            page.set_input_files("#upload-input", str(clips[CLIP]))
            card = page.locator(f'#results .result[data-video="{CLIP}.mp4"]')
            expect(card).to_be_visible(timeout=180_000)
            name = card.locator(".person-name").first
            expect(name).to_have_text(CLIP_PEOPLE[CLIP])
            expect(card.locator(".similarity").first).to_contain_text("%")
            face = card.locator("img.face").first
            expect(face).to_be_visible()
            assert face.evaluate("img => img.complete && img.naturalWidth > 0")
            expect(page.locator('#jobs .job[data-status="done"]')).to_have_count(1)
            page.screenshot(path=str(artifacts() / "browser-result.png"), full_page=True)
        finally:
            browser.close()


def test_a_stranger_is_shown_and_enrolled_from_the_page(chromium: str, service: HttpService,
                                                        clips: dict[str, Path]) -> None:
    """A clip of someone not enrolled shows a stranger with its crop; "Enrol as..." names
    them, and the person exists with that face."""
    from playwright.sync_api import expect, sync_playwright

    with service.client() as client:
        assert client.delete(f"/v1/people/{CLIP_PEOPLE['test_2']}").status_code == 204
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(service.url)
            page.fill("#api-key", service.api_key)
            page.click("#login")
            expect(page.locator("#app")).to_be_visible()
            page.set_input_files("#upload-input", str(clips["test_2"]))
            card = page.locator('#results .result[data-video="test_2.mp4"]')
            stranger = card.locator("li.stranger").first
            expect(stranger).to_be_visible(timeout=180_000)
            face = stranger.locator("img.face")
            expect(face).to_be_visible()
            assert face.evaluate("img => img.complete && img.naturalWidth > 0")
            page.once("dialog", lambda dialog: dialog.accept("Rowan"))
            stranger.locator("button.enrol-stranger").click()
            expect(page.locator("#people .person-row", has_text="Rowan")).to_be_visible(
                timeout=60_000)
            page.screenshot(path=str(artifacts() / "browser-stranger.png"), full_page=True)
            # the same face again under another name: the page asks, saying whom it matches
            asked: list[str] = []

            def answer(dialog: Any) -> None:
                asked.append(dialog.message)
                dialog.accept("Rowan Atkinson" if dialog.type == "prompt" else None)

            page.on("dialog", answer)
            stranger.locator("button.enrol-stranger").click()
            expect(page.locator("#people .person-row", has_text="Rowan Atkinson")).to_be_visible(
                timeout=60_000)
            assert len(asked) == 2 and "'Rowan'" in asked[1], asked
        finally:
            browser.close()
    with service.client() as client:
        assert client.get("/v1/people/Rowan").json()["faces"] == 1
        assert client.get("/v1/people/Rowan Atkinson").json()["faces"] == 1


SEEDED = 23  # results of one person, a minute apart: more than the page's 20
T2020 = datetime(2020, 1, 1, tzinfo=UTC).timestamp()


def seeded_result(key: str, index: int) -> dict[str, Any]:
    person = {"person": "seeded_person", "similarity": 0.8, "distance": 0.4, "first_ms": 0,
              "last_ms": 1500, "frames": 4, "box": [0, 0, 10, 10], "metadata": {},
              "appearances": [{"start_ms": 0, "end_ms": 1500}]}
    if index < 0:
        return {"video": key, "status": "error", "people": [], "unknown_faces": 0,
                "error": {"code": "corrupt_video", "message": "seeded: not a video"}}
    return {"video": key, "status": "ok", "duration_ms": 2000, "frames_sampled": 4,
            "people": [person], "unknown_faces": 0}


def seed_past_results(data_dir: Path) -> None:
    """Results published in 2020, as the pipeline leaves them: rows and documents."""
    ports = ports_of(Settings(data_dir=data_dir))
    rows = [(f"seeded/clip-{i:02}.mp4", i) for i in range(SEEDED)]
    rows += [(f"seeded/broken-{i}.mp4", -1 - i) for i in range(2)]
    for key, index in rows:
        doc = seeded_result(key, index)
        ports.output.put_bytes(result_key(key), json.dumps(doc).encode())
        error = doc.get("error") or {"code": "", "message": ""}
        ports.metadata.put_video(VideoRecord(
            key, "e", "error" if index < 0 else "done", T2020 + 60 * abs(index),
            result_key(key), [p["person"] for p in doc["people"]], error["code"],
            error["message"]))


def test_browse_past_results_and_open_one(chromium: str, service: HttpService) -> None:
    from playwright.sync_api import expect, sync_playwright

    seed_past_results(service.data_dir)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000},
                                    timezone_id="UTC")
            page.goto(service.url)
            page.fill("#api-key", service.api_key)
            page.click("#login")
            expect(page.locator("#browse-list .browse-item").first).to_be_visible(
                timeout=30_000)  # the latest results, at once
            browse_by_person_and_time(page)
            browse_errors(page)
            page.select_option("#browse-status", "")
            page.fill("#browse-person", "seeded_person")
            page.click("#browse-search")
            page.locator("#browse-list .browse-item").first.click()
            card = page.locator('#results .result[data-video="seeded/clip-22.mp4"]')
            expect(card.locator(".person-name")).to_have_text("seeded_person")
            expect(card.locator(".similarity")).to_have_text("80.0%")
            page.screenshot(path=str(artifacts() / "browser-browse.png"), full_page=True)
        finally:
            browser.close()


def browse_by_person_and_time(page: Any) -> None:
    """A person's results, 20 a page, then "More"; then only those of ten minutes."""
    from playwright.sync_api import expect

    items = page.locator("#browse-list .browse-item")
    page.fill("#browse-person", "seeded_person")
    page.click("#browse-search")
    expect(page.locator('#browse-list .browse-item[data-video^="seeded/clip-"]')).to_have_count(20)
    expect(items).to_have_count(20)
    expect(items.first).to_have_attribute("data-video", "seeded/clip-22.mp4")
    page.click("#browse-more")
    expect(items).to_have_count(SEEDED)
    expect(items.last).to_have_attribute("data-video", "seeded/clip-00.mp4")
    expect(page.locator("#browse-more")).to_be_hidden()
    page.fill("#browse-since", "2020-01-01T00:10")
    page.fill("#browse-until", "2020-01-01T00:20")
    page.click("#browse-search")
    expect(items).to_have_count(11)  # minutes 10 to 20, both included
    page.fill("#browse-since", "")
    page.fill("#browse-until", "")


def browse_errors(page: Any) -> None:
    """Failed results only; opening one shows why it failed."""
    from playwright.sync_api import expect

    page.fill("#browse-person", "")
    page.select_option("#browse-status", "error")
    page.click("#browse-search")
    broken = page.locator('#browse-list .browse-item[data-video^="seeded/broken-"]')
    expect(broken).to_have_count(2)
    expect(page.locator('#browse-list .browse-item[data-status="done"]')).to_have_count(0)
    broken.first.click()
    card = page.locator('#results .result[data-video="seeded/broken-1.mp4"]')
    expect(card.locator(".result-error")).to_have_text("seeded: not a video")
