"""The web page in a real browser: headless Debian Chromium driven by Playwright logs in,
uploads a real clip, waits for the result and checks the name shown; enrols a stranger from
its crop; browses past results by person, status and time, follows "More" and opens one;
the People view (a person's videos, paged, and a span's crop and time), search by photo, and
the Strangers view (against its contract answered inside the browser, a server without the
routes, and the real backend once `facereel.http.routes_strangers` exists).
Screenshots are kept in the artifacts folder. Chromium is installed by the test under CI;
elsewhere, without it, the test is skipped with the reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from facereel.config import Settings
from facereel.pipeline.publishing import result_key
from facereel.ports.metadata import VideoRecord
from tests.conftest import CLIP_PEOPLE, REPO_ROOT
from tests.support.frames import cut_frames
from tests.support.http_service import API_KEY, HttpService
from tests.support.live_api import jpeg
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


READER = "browser-reader-key"  # may only read: search by photo is refused (403)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, cse546: Path) -> Iterator[HttpService]:
    keys = {"FACEREEL_API_KEYS": f"{API_KEY}:admin,{READER}:read",  # admin: may search
            "FACEREEL_STRANGERS_MIN_TRACKS": "2"}  # a group from two uploads of one clip
    with HttpService(tmp_path_factory.mktemp("browser") / "data", keys).running(
            cse546) as service:
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
                                                        tmp_path: Path,
                                                        clips: dict[str, Path]) -> None:
    """A clip of someone not enrolled shows a stranger with its crop; "Enrol as..." names
    them, the person exists with that face, and the clip's card shows the republished result;
    the same face added to another person asks first, naming whom it matches."""
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
            # the result learnt the name (republished from the face memory): the card shows it
            expect(card.locator("li.person:not(.stranger)", has_text="Rowan")).to_be_visible(
                timeout=60_000)
            expect(card.locator("li.stranger")).to_have_count(0)
            # the same face again under another name: the page asks, saying whom it matches
            ((photo, _),) = cut_frames({"test_2": clips["test_2"]}, {"test_2": "Rowan"},
                                       tmp_path, per_clip=1)
            asked: list[str] = []

            def answer(dialog: Any) -> None:
                asked.append(dialog.message)
                dialog.accept()

            page.on("dialog", answer)
            page.fill("#new-name", "Rowan Atkinson")
            page.set_input_files("#new-photos", str(photo))
            page.click("#add-person-submit")
            expect(page.locator("#add-person-msg")).to_contain_text("Enrolled 1 of 1",
                                                                    timeout=60_000)
            assert len(asked) == 1 and "'Rowan'" in asked[0], asked
        finally:
            browser.close()
    with service.client() as client:
        assert client.get("/v1/people/Rowan").json()["faces"] == 1
        assert client.get("/v1/people/Rowan Atkinson").json()["faces"] == 1


SEEDED = 23  # results of one person, a minute apart: more than the page's 20
T2020 = datetime(2020, 1, 1, tzinfo=UTC).timestamp()


def seeded_result(key: str, index: int, name: str = "seeded_person") -> dict[str, Any]:
    person = {"person": name, "similarity": 0.8, "distance": 0.4, "first_ms": 0,
              "last_ms": 1500, "frames": 4, "box": [0, 0, 10, 10], "metadata": {},
              "appearances": [{"start_ms": 0, "end_ms": 1500}]}
    if index < 0:
        return {"video": key, "status": "error", "people": [], "unknown_faces": 0,
                "error": {"code": "corrupt_video", "message": "seeded: not a video"}}
    return {"video": key, "status": "ok", "duration_ms": 2000, "frames_sampled": 4,
            "people": [person], "unknown_faces": 0}


def seed_past_results(data_dir: Path, name: str = "seeded_person", count: int = SEEDED,
                      broken: int = 2) -> None:
    """Results naming `name` published in 2020, as the pipeline leaves them: rows and
    documents (and `broken` failed ones)."""
    ports = ports_of(Settings(data_dir=data_dir))
    stem = "clip" if name == "seeded_person" else name
    rows = [(f"seeded/{stem}-{i:02}.mp4", i) for i in range(count)]
    rows += [(f"seeded/broken-{i}.mp4", -1 - i) for i in range(broken)]
    for key, index in rows:
        doc = seeded_result(key, index, name)
        ports.output.put_bytes(result_key(key), json.dumps(doc).encode())
        error = doc.get("error") or {"code": "", "message": ""}
        ports.metadata.put_video(VideoRecord(
            key, "e", "error" if index < 0 else "done", T2020 + 60 * abs(index),
            result_key(key), [p["person"] for p in doc["people"]], error["code"],
            error["message"]))


def test_browse_past_results_and_open_one(chromium: str, service: HttpService) -> None:
    from playwright.sync_api import expect

    seed_past_results(service.data_dir)
    with logged_in(chromium, service) as page:
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


# ---- issue 13: the People view, the Strangers view, search by photo ------------------------

PERSON = CLIP_PEOPLE[CLIP]
VIDEO = f"{CLIP}.mp4"


@contextmanager
def logged_in(chromium: str, service: HttpService, key: str = API_KEY) -> Iterator[Any]:
    """A page of a fresh headless browser, logged in with `key`."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000},
                                    timezone_id="UTC")
            page.goto(service.url)
            page.fill("#api-key", key)
            page.click("#login")
            expect(page.locator("#app")).to_be_visible()
            yield page
        finally:
            browser.close()


def published(service: HttpService, clips: dict[str, Path], clip: str = CLIP,
              video: str = "") -> None:
    """`clip`'s result published (as `video`, by default its own name): uploaded through the
    API unless an earlier test did."""
    video = video or f"{clip}.mp4"
    with service.client() as client:
        if client.get(f"/v1/results/{video}").status_code != 404:
            return
        files = {"file": (video, clips[clip].read_bytes(), "video/mp4")}
        job = client.post("/v1/videos", files=files).json()["job"]
        deadline = time.monotonic() + 240
        while client.get(f"/v1/jobs/{job}").json()["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline, f"{video} was not processed"
            time.sleep(0.5)


def remembered(service: HttpService, clips: dict[str, Path], clip: str = CLIP) -> dict[str, Any]:
    """The published result of `clip`, once its faces are in the face memory."""
    published(service, clips, clip)
    person, video = CLIP_PEOPLE[clip], f"{clip}.mp4"
    deadline = time.monotonic() + 60
    with service.client() as client:
        while not any(m["video"] == video for m in client.post(
                "/v1/search", json={"person": person}).json()["matches"]):
            assert time.monotonic() < deadline, f"{video} was never remembered"
            time.sleep(0.5)
        doc: dict[str, Any] = client.get(f"/v1/results/{video}").json()
    return doc


DASH = "\u2013"  # the page writes a span as "1.5 s", an en dash, "4.0 s"


def span_text(start_ms: int, end_ms: int) -> str:
    return f"{start_ms / 1000:.1f} s {DASH} {end_ms / 1000:.1f} s"


def test_people_view_lists_a_persons_videos_and_a_span_shows_crop_and_time(
        chromium: str, service: HttpService, clips: dict[str, Path]) -> None:
    """A person's videos, 10 a page ("More" follows the cursor), their face crops; clicking a
    span of the real clip shows its crop and its start and end."""
    from playwright.sync_api import expect

    doc = remembered(service, clips)
    (entry,) = [p for p in doc["people"] if p["person"] == PERSON]
    first = entry["appearances"][0]
    seed_past_results(service.data_dir, PERSON, count=11, broken=0)  # 12 videos: two pages
    with logged_in(chromium, service) as page:
        page.click('#views [data-view="who"]')
        page.locator(f'#pv-people .pv-person[data-name="{PERSON}"]').click()
        videos = page.locator("#pv-videos .pv-video")
        expect(videos).to_have_count(10)
        expect(videos.first).to_have_attribute("data-video", VIDEO)  # the latest first
        page.click("#pv-more")
        expect(videos).to_have_count(12)
        expect(page.locator("#pv-more")).to_be_hidden()
        crop = page.locator("#pv-crops img.face")
        expect(crop).to_have_count(1)  # the seeded results carry no crop
        expect(crop).to_have_attribute("title", VIDEO)

        card = page.locator(f'#pv-videos .pv-video[data-video="{VIDEO}"]')
        spans = card.locator("button.span")
        expect(spans).to_have_count(len(entry["appearances"]))
        spans.first.click()
        expect(spans.first).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#pv-span")).to_be_visible()
        expect(page.locator("#pv-span-video")).to_have_text(VIDEO)
        expect(page.locator("#pv-span-time")).to_have_text(
            span_text(first["start_ms"], first["end_ms"]))
        face = page.locator("#pv-span-face")
        expect(face).to_have_attribute("src", f"/v1/faces/{entry['face']}")
        page.wait_for_function("() => document.querySelector('#pv-span-face').naturalWidth > 0")
        page.screenshot(path=str(artifacts() / "browser-people-view.png"), full_page=True)


def test_search_by_photo_finds_the_clip(chromium: str, service: HttpService,
                                        clips: dict[str, Path], tmp_path: Path) -> None:
    """A frame of the clip finds it (crop, track, spans, similarity); a photo without a
    face, and a read-only key, are each one line of error."""
    from playwright.sync_api import expect

    remembered(service, clips)
    ((photo, _),) = cut_frames({CLIP: clips[CLIP]}, {CLIP: PERSON}, tmp_path, per_clip=1)
    with logged_in(chromium, service) as page:
        page.click('#views [data-view="search"]')
        page.set_input_files("#search-photo", str(photo))
        matches = page.locator("#search-matches .match")
        expect(matches.first).to_be_visible(timeout=60_000)
        expect(matches.first).to_have_attribute("data-video", VIDEO)
        expect(matches.first.locator(".similarity")).to_contain_text("%")
        expect(matches.first.locator(".match-spans")).to_contain_text(f" s {DASH} ")
        expect(page.locator("#search-summary")).to_contain_text("best first")
        page.wait_for_function(
            "() => document.querySelector('#search-matches img.face').naturalWidth > 0")
        shown = [float(t.rstrip("%")) for t in matches.locator(".similarity").all_inner_texts()]
        assert shown == sorted(shown, reverse=True), shown
        page.screenshot(path=str(artifacts() / "browser-search.png"), full_page=True)

        page.set_input_files("#search-photo", {"name": "blank.jpg", "mimeType": "image/jpeg",
                                               "buffer": jpeg()})
        expect(page.locator("#search-error")).to_contain_text("no face")
        expect(matches).to_have_count(0)
        page.click("#logout")
        page.fill("#api-key", READER)
        page.click("#login")
        page.click('#views [data-view="search"]')
        page.set_input_files("#search-photo", str(photo))
        error = page.locator("#search-error")
        expect(error).to_contain_text("admin key")
        assert "\n" not in error.inner_text()


GROUPS = {"groups": [
    {"group_id": "g1", "faces": 14, "tracks": 2, "samples": [],
     "videos": [{"video": "a.mp4", "etag": "e1", "track_id": "3"},
                {"video": "b.mp4", "etag": "e2", "track_id": "0"}]},
    {"group_id": "g2", "faces": 5, "tracks": 1, "samples": [],
     "videos": [{"video": "c.mp4", "etag": "e3", "track_id": "1"}]}], "ungrouped": 4}


def test_strangers_view_renders_groups_and_sends_the_contracts_bodies(
        chromium: str, service: HttpService, clips: dict[str, Path]) -> None:
    """The view against the strangers contract, answered inside the browser (the routes are
    another branch's): groups with their sample crops (real ones, served by the server),
    counts and videos; "Name..." posts the name and says how many results were updated;
    two groups selected are merged; a track is split off."""
    from playwright.sync_api import expect

    doc = remembered(service, clips)
    crop = next(p["face"] for p in doc["people"] if p["person"] == PERSON)
    groups = json.loads(json.dumps(GROUPS))
    groups["groups"][0]["samples"] = [crop, crop]
    sent: list[tuple[str, str, Any]] = []

    def answer(route: Any) -> None:
        request = route.request
        body: Any = request.post_data_json if request.method == "POST" else None
        sent.append((request.method, request.url.removeprefix(service.url), body))
        if request.method == "GET":
            route.fulfill(json=groups)
        elif request.url.endswith("/name"):
            route.fulfill(json={"person": body["name"], "enrolled": 2, "republished": 3})
        elif request.url.endswith("/split"):
            route.fulfill(json={"group_id": "g3"})
        else:
            route.fulfill(json={"group_id": "g1"})

    with logged_in(chromium, service) as page:
        page.route("**/v1/strangers**", answer)
        page.click('#views [data-view="strangers"]')
        group = page.locator('#strangers .stranger-group[data-group="g1"]')
        expect(page.locator("#strangers .stranger-group")).to_have_count(2)
        expect(group.locator(".group-counts")).to_have_text("14 faces · 2 tracks · 2 videos")
        expect(group.locator(".group-videos li")).to_have_count(2)
        expect(page.locator("#strangers-ungrouped")).to_contain_text("4")
        page.wait_for_function("() => [...document.querySelectorAll("
                               "'#strangers .stranger-group[data-group=g1] img.face')]"
                               ".every((img) => img.naturalWidth > 0)")
        page.screenshot(path=str(artifacts() / "browser-strangers.png"), full_page=True)

        page.once("dialog", lambda dialog: dialog.accept("Ada"))
        group.locator("button.name-group").click()
        expect(page.locator("#strangers-msg")).to_have_text("named Ada: 3 results updated")
        assert ("POST", "/v1/strangers/g1/name", {"name": "Ada"}) in sent

        expect(page.locator("#strangers-merge")).to_be_disabled()
        for gid in ("g1", "g2"):
            page.locator(f'#strangers .stranger-group[data-group="{gid}"] .group-pick').check()
        page.click("#strangers-merge")
        expect(page.locator("#strangers-msg")).to_contain_text("merged")
        assert ("POST", "/v1/strangers/merge", {"groups": ["g1", "g2"]}) in sent

        group.locator('.group-videos li[data-video="b.mp4"] button.split-track').click()
        expect(page.locator("#strangers-msg")).to_contain_text("group g3")
        assert ("POST", "/v1/strangers/g1/split",
                {"tracks": [{"video": "b.mp4", "track_id": "0"}]}) in sent


def test_strangers_view_names_a_real_group(chromium: str, service: HttpService,
                                           clips: dict[str, Path]) -> None:
    """A clip whose person is no longer enrolled leaves a group
    of unknown faces; naming it from the page enrols them and updates the clip's result.
    (test_1's person, whom no other test here enrols again.)"""
    from playwright.sync_api import expect

    clip, name = "test_1", "Someone Named"
    video = f"{clip}.mp4"
    with service.client() as client:
        client.delete(f"/v1/people/{CLIP_PEOPLE[clip]}")
    published(service, clips, clip)
    published(service, clips, clip, f"{clip}-again.mp4")  # a group needs two tracks at least
    with logged_in(chromium, service) as page:
        page.click('#views [data-view="strangers"]')
        group = page.locator("#strangers .stranger-group", has=page.locator(
            f'.group-videos li[data-video="{video}"]')).first
        deadline = time.monotonic() + 120
        while not group.is_visible():  # grouped as videos arrive: asked again until it is
            assert time.monotonic() < deadline, f"no group holds {video}'s stranger"
            page.click("#strangers-refresh")
            page.wait_for_timeout(1000)
        expect(group.locator("img.face").first).to_be_visible()
        page.once("dialog", lambda dialog: dialog.accept(name))
        group.locator("button.name-group").click()
        expect(page.locator("#strangers-msg")).to_contain_text(f"named {name}: ")
        page.screenshot(path=str(artifacts() / "browser-strangers-named.png"), full_page=True)
    with service.client() as client:
        assert client.get(f"/v1/people/{name}").status_code == 200
        people = client.get(f"/v1/results/{video}").json()["people"]
        assert name in [p["person"] for p in people]
