"""Results that learn and strangers grouped, on the real clips through the pipeline's stages
(embedded backends) and the command line and HTTP API: two people of the clips are not
enrolled; re-encodings of their clips arrive as other videos. Each person's strangers form
one group across their videos; a wrong group is split and merged back; enrolling one person
later (from frames of the clip) republishes the results of their videos (JSON, TXT, CSV,
metadata row) from the face memory while opening any video fails, exactly as a fresh
recognition would publish them; naming the other group enrols them and does the same;
renaming and merging people republish too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from facereel.cli import app
from facereel.config import Settings
from facereel.core import media
from facereel.core.gallery_io import read_gallery_file
from facereel.http.app import create_app
from facereel.http.server import build_services
from facereel.pipeline.context import StageContext
from facereel.pipeline.parts import split_face_key
from facereel.pipeline.wiring import Ports
from facereel.ports.metadata import read_people_json
from tests.support.media_factory import read_frames, transcode
from tests.support.stages import context_of, ports_of, run_through

LATE = "president_trump"  # test_0's person: enrolled only after their videos were processed
NAMED = "morgan_freeman"  # test_7's person: never enrolled, named from their group
FAMILIES = {"test_0": ("test_0.mp4", "again/test_0-480.mp4", "again/test_0-360.mp4"),
            "test_7": ("test_7.mp4", "again/test_7-480.mp4", "again/test_7-360.mp4")}
ADMIN = {"Authorization": "Bearer admin-key"}
WRITER = {"Authorization": "Bearer writer-key"}
runner = CliRunner()


@dataclass
class World:
    settings: Settings
    ports: Ports
    context: StageContext
    client: TestClient
    photos: list[Path]

    def cli(self, *args: str) -> tuple[int, str, str]:
        outcome = runner.invoke(app, [*args, "--data-dir", str(self.settings.data_dir)])
        return outcome.exit_code, outcome.stdout, " ".join(outcome.stderr.split())

    def process(self, key: str, path: Path) -> None:
        info = self.ports.input.put_file(key, path)
        ran = run_through(self.context, "split", {"key": info.key, "etag": info.etag})
        assert [stage for stage, _ in ran] == ["split", "recognize", "publish", "remember"]

    def doc(self, key: str) -> dict[str, Any]:
        return dict(json.loads(self.ports.output.get_bytes(f"{key}.json")))

    def seeds(self, key: str) -> tuple[str, str]:
        stem = key.removesuffix(".mp4")
        return (self.ports.output.get_bytes(f"{stem}.txt").decode(),
                self.ports.output.get_bytes(f"{stem}.csv").decode())

    def groups(self) -> list[dict[str, Any]]:
        code, out, err = self.cli("strangers", "--json")
        assert code == 0, err
        return [json.loads(line) for line in out.splitlines()]

    def group_of(self, family: str) -> dict[str, Any]:
        (group,) = [g for g in self.groups()
                    if {v["video"] for v in g["videos"]} & set(FAMILIES[family])]
        return group


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, cse546: Path,
          clips: dict[str, Path]) -> Iterator[World]:
    root = tmp_path_factory.mktemp("learning")
    settings = Settings(data_dir=root / "data", workers=1, memory_index_interval=0,
                        api_keys="admin-key:admin,writer-key:write",
                        app_workers_min=0, app_workers_max=0)
    gallery = read_gallery_file(cse546 / "encoding", settings.recognition.embedder, 128)
    gallery.without(LATE).without(NAMED).save(settings.storage.gallery_path)
    ports = ports_of(settings)
    ports.metadata.put_people(read_people_json(cse546 / "student_data.json"))
    context = context_of(settings, ports)
    services, tier = build_services(settings, ports, lambda: 0)
    with TestClient(create_app(services)) as client:
        state = World(settings, ports, context, client, [])
        for clip, keys in FAMILIES.items():
            state.process(keys[0], clips[clip])
            for key, height in zip(keys[1:], (480, 360), strict=True):
                made = transcode(clips[clip], root / key.replace("/", "-"), seconds=1.0,
                                 height=height)
                state.process(key, made)
        state.process("test_1.mp4", clips["test_1"])  # somebody enrolled: never a stranger
        for at in (0.5, 1.5):  # frames of test_0 between the shots the pipeline embedded
            _, rgb = next(read_frames(clips["test_0"], start=at))
            state.photos.append(root / f"late-{at}.jpg")
            Image.fromarray(rgb).save(state.photos[-1])
        yield state
    tier.close()


@pytest.fixture
def no_video(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    """Opening any video fails from here on, and the inputs are gone from their bucket."""
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a video was opened")

    monkeypatch.setattr(media.VideoSource, "__init__", refuse)
    monkeypatch.setattr("av.open", refuse)
    for info in list(world.ports.input.list("")):
        world.ports.input.delete(info.key)


def test_each_unenrolled_person_is_one_group_across_their_videos(world: World) -> None:
    for family, keys in FAMILIES.items():
        assert not world.doc(keys[0])["people"], f"{family}'s person is not enrolled yet"
    groups = world.groups()
    videos = [{v["video"] for v in g["videos"]} for g in groups]
    for keys in FAMILIES.values():
        assert set(keys) in videos, f"{keys} are one group: {videos}"
    assert all("test_1.mp4" not in v for v in videos)
    group = world.group_of("test_0")
    assert group["faces"] >= group["tracks"] >= 3 and 1 <= len(group["samples"]) <= 4
    assert all(world.ports.stage1.head(split_face_key(s)[0]) is not None  # type: ignore[index]
               for s in group["samples"])
    answer = world.client.get("/v1/strangers", headers=ADMIN)
    assert answer.status_code == 200 and answer.json()["groups"] == groups
    assert isinstance(answer.json()["ungrouped"], int)
    assert world.client.get("/v1/strangers", headers=WRITER).status_code == 403
    sample = world.client.get(f"/v1/faces/{group['samples'][0]}", headers=ADMIN)
    assert sample.status_code == 200 and sample.content[:3] == b"\xff\xd8\xff"
    code, out, _ = world.cli("strangers")
    assert code == 0 and group["group_id"] in out


def test_a_wrong_group_is_split_and_merged_back(world: World) -> None:
    group = world.group_of("test_7")
    moved = [v for v in group["videos"] if v["video"].startswith("again/")]
    args = [a for v in moved for a in ("--track", f"{v['video']}:{v['track_id']}")]
    code, out, err = world.cli("strangers", "split", group["group_id"], *args)
    assert code == 0, err
    new = out.split()[-1]
    by_id = {g["group_id"]: g for g in world.groups()}
    assert {v["video"] for v in by_id[new]["videos"]} == {v["video"] for v in moved}
    assert {v["video"] for v in by_id[group["group_id"]]["videos"]} == {"test_7.mp4"}
    code, _, _ = world.cli("memory", "index")  # regrouping keeps what was made by hand
    assert code == 0 and new in {g["group_id"] for g in world.groups()}
    body = {"groups": [group["group_id"], new]}
    merged = world.client.post("/v1/strangers/merge", json=body, headers=WRITER)
    assert merged.status_code == 200, merged.text
    assert merged.json()["group_id"] == group["group_id"]
    assert {v["video"] for v in merged.json()["videos"]} == set(FAMILIES["test_7"])
    assert world.client.post("/v1/strangers/merge", json=body,
                             headers=WRITER).status_code == 404, "the second is gone"
    refused = world.client.post("/v1/strangers/merge", json={**body, "into": "x"},
                                headers=WRITER)
    assert refused.status_code == 422 and "into: unknown field" in refused.text
    code, _, err = world.cli("strangers", "merge", "nope", group["group_id"])
    assert code == 2 and "no group of strangers 'nope'" in err
    one = {"video": "test_7.mp4", "track_id": next(v for v in group["videos"]
                                               if v["video"] == "test_7.mp4")["track_id"]}
    split = world.client.post(f"/v1/strangers/{group['group_id']}/split",
                              json={"tracks": [one]}, headers=WRITER)
    assert split.status_code == 200, split.text
    (other,) = split.json().values()
    code, out, err = world.cli("strangers", "merge", group["group_id"], other)
    assert code == 0 and f"merged into group {group['group_id']}: 3 tracks" in out, err
    assert world.client.post("/v1/strangers/nope/split", json={"tracks": [one]},
                             headers=WRITER).status_code == 404


def test_enrolling_later_republishes_past_results_without_decoding(
        world: World, no_video: None) -> None:
    code, out, err = world.cli("enroll", LATE, *map(str, world.photos))
    assert code == 0, err
    assert "republished 3 results" in out
    for key in FAMILIES["test_0"]:
        doc = world.doc(key)
        assert [p["person"] for p in doc["people"]] == [LATE] and doc["strangers"] == []
        assert doc["people"][0]["metadata"]["major"] == "physics"
        txt, csv = world.seeds(key)
        assert txt == f"{LATE}\n" and csv.splitlines()[1] == f"{LATE},physics,junior"
        row = world.ports.metadata.get_video(key)
        assert row is not None and row.people == [LATE] and row.status == "done"
    assert world.doc("test_7.mp4")["people"] == [], "other results are left alone"
    assert all(not {v["video"] for v in g["videos"]} & set(FAMILIES["test_0"])
               for g in world.groups()), "recognized now: no longer strangers"
    code, out, _ = world.cli("enroll", LATE, str(world.photos[0]), "--force")
    assert code == 0 and "republished 0 results" in out, "nothing changed: nothing rewritten"


def test_a_republished_result_is_what_a_fresh_recognition_publishes(
        world: World, clips: dict[str, Path]) -> None:
    world.process("fresh/test_0.mp4", clips["test_0"])
    fresh, republished = world.doc("fresh/test_0.mp4"), world.doc("test_0.mp4")

    def comparable(doc: dict[str, Any]) -> dict[str, Any]:
        entries = [{**p, "face": split_face_key(p["face"])[1]}  # type: ignore[index]
                   for p in doc["people"]]
        return {"people": entries, "strangers": doc["strangers"],
                "unknown_faces": doc["unknown_faces"], "status": doc["status"]}

    assert comparable(republished) == comparable(fresh)
    assert republished["people"][0]["face"].startswith("test_0/")


def test_naming_a_group_enrols_it_and_updates_past_results(world: World,
                                                           no_video: None) -> None:
    group = world.group_of("test_7")
    assert world.client.post(f"/v1/strangers/{group['group_id']}/name",
                             json={"name": "Morgan"}, headers=ADMIN | {"Authorization":
                                                                       "Bearer nope"}
                             ).status_code == 401
    answer = world.client.post(f"/v1/strangers/{group['group_id']}/name",
                               json={"name": "Morgan"}, headers=WRITER)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"person": "Morgan", "enrolled": answer.json()["enrolled"],
                             "republished": 3}
    assert answer.json()["enrolled"] >= 3
    for key in FAMILIES["test_7"]:
        assert [p["person"] for p in world.doc(key)["people"]] == ["Morgan"]
        assert world.seeds(key)[0] == "Morgan\n"
    again = world.client.post(f"/v1/strangers/{group['group_id']}/name",
                              json={"name": "Morgan"}, headers=WRITER)
    assert again.status_code == 404
    actions = {(a["action"], a["outcome"]) for a in map(
        json.loads, world.settings.audit_path.read_text().splitlines())}
    assert {("name_strangers", "ok"), ("merge_strangers", "ok"), ("split_strangers", "ok"),
            ("enrol", "ok")} <= actions


def test_renaming_and_merging_people_republish(world: World, no_video: None) -> None:
    code, out, err = world.cli("gallery", "rename", "Morgan", "Morgan Freeman")
    assert code == 0 and "republished 3 results" in out, err
    for key in FAMILIES["test_7"]:
        row = world.ports.metadata.get_video(key)
        assert row is not None and row.people == ["Morgan Freeman"]
    renamed = world.client.post(f"/v1/people/{LATE}/rename", json={"name": "Donald"},
                                headers=WRITER)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["republished"] == 4 and renamed.json()["metadata"] is True
    assert world.seeds("test_0.mp4") == ("Donald\n",
                                         "name,major,year\nDonald,physics,junior\n")
    before = world.ports.gallery.load().gallery.counts()["Donald"]
    code, out, err = world.cli("enroll", "Alias", str(world.photos[1]), "--force")
    assert code == 0, err
    code, out, err = world.cli("gallery", "merge", "Alias", "Donald")
    assert code == 0 and "merged Alias into Donald: 1 gallery faces" in out, err
    counts = world.ports.gallery.load().gallery.counts()
    assert "Alias" not in counts and counts["Donald"] == before + 1
    assert [p["person"] for p in world.doc("test_0.mp4")["people"]] == ["Donald"]
    code, _, err = world.cli("gallery", "rename", "Nobody", "X")
    assert code == 2 and err.count("error") == 1 and "nobody called 'Nobody'" in err
    clash = world.client.post("/v1/people/Donald/rename", json={"name": "Morgan Freeman"},
                              headers=WRITER)
    assert clash.status_code == 409


def test_a_change_of_one_person_decides_only_the_videos_near_them(
        world: World, no_video: None) -> None:
    """With the index snapshot written, a relearn for one person reads only the videos with
    a shot within reach of their faces (threshold + clear slack + clear margin), not the
    whole memory; it finds what a relearn of everything finds."""
    from facereel.app.memory import FaceMemory

    code, _, err = world.cli("memory", "index")
    assert code == 0, err
    memory = FaceMemory(world.ports, world.settings)
    gallery = world.ports.gallery.load().gallery
    everyone = memory.relearn(gallery)
    biden = memory.relearn(gallery, ["president_biden"])  # test_1's person, enrolled
    assert everyone.videos == len(list(world.ports.memory.videos()))
    assert 1 <= biden.videos < everyone.videos
    assert (everyone.republished, biden.republished) == (0, 0), "nothing changed"
    policy = world.settings.recognition.match_policy()
    reach = policy.threshold + policy.clear_slack + policy.clear_margin
    near = memory.searcher.videos_near(gallery.vectors_of("president_biden"), reach)
    assert "test_1.mp4" in near and len(near) == biden.videos
    assert memory.relearn(gallery, ["nobody enrolled"]).videos == 0


def test_removing_a_person_republishes_their_results_without_them(
        world: World, no_video: None) -> None:
    """`gallery remove` and DELETE /v1/people/{name} republish the results that named the
    person: their tracks are strangers again."""
    assert [p["person"] for p in world.doc("test_1.mp4")["people"]] == ["president_biden"]
    code, out, err = world.cli("gallery", "remove", "president_biden")
    assert code == 0, err
    assert "republished 1 results" in out
    doc = world.doc("test_1.mp4")
    assert doc["people"] == [] and len(doc["strangers"]) == 1
    assert world.seeds("test_1.mp4")[0] == "unknown\n"
    row = world.ports.metadata.get_video("test_1.mp4")
    assert row is not None and row.people == []
    deleted = world.client.delete("/v1/people/Donald", headers=WRITER)  # test_0's, renamed
    assert deleted.status_code == 204, deleted.text
    for key in FAMILIES["test_0"]:
        assert world.doc(key)["people"] == [], key
