"""The face memory on the real clips, through the pipeline's stages on embedded backends and
the command line: clips processed while one of their people was not enrolled are found once
that person is enrolled (from other frames of the clip), from the stored faces alone (opening
any media fails, and the videos are gone from the input bucket); the index snapshot plus
its tail answers like a full scan; re-processing adds nothing; forgetting, retention and
re-embedding do what they say; every search, forget and enrolment is in the audit log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facereel.cli import app
from facereel.config import Settings
from facereel.core import media
from facereel.core.gallery_io import read_gallery_file
from facereel.memory.indexer import update_index
from facereel.pipeline.context import StageContext
from facereel.pipeline.parts import split_face_key
from facereel.pipeline.wiring import Ports
from tests.support.media_factory import read_frames
from tests.support.stages import context_of, ports_of, run_through

LATE = "president_trump"  # test_0's person, enrolled only after test_0 was processed
CLIPS = ("test_0", "test_1", "test_7")
runner = CliRunner()


@dataclass
class Past:
    settings: Settings
    ports: Ports
    context: StageContext
    etags: dict[str, str]
    results: dict[str, dict[str, Any]]  # clip -> its published result document
    root: Path

    def cli(self, *args: str) -> tuple[int, str, str]:
        outcome = runner.invoke(app, [*args, "--data-dir", str(self.settings.data_dir)])
        return outcome.exit_code, outcome.stdout, " ".join(outcome.stderr.split())

    def search(self, *args: str) -> list[dict[str, Any]]:
        code, out, err = self.cli("search", *args, "--json")
        assert code == 0, err
        return [json.loads(line) for line in out.splitlines()]

    def process(self, clip: str, path: Path) -> None:
        info = self.ports.input.put_file(f"{clip}.mp4", path)
        self.etags[clip] = info.etag
        ran = run_through(self.context, "split", {"key": info.key, "etag": info.etag})
        assert [stage for stage, _ in ran] == ["split", "recognize", "publish", "remember"]
        self.results[clip] = json.loads(self.ports.output.get_bytes(f"{clip}.mp4.json"))

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.settings.audit_path.read_text().splitlines()]


@pytest.fixture(scope="module")
def past(tmp_path_factory: pytest.TempPathFactory, cse546: Path,
         clips: dict[str, Path]) -> Iterator[Past]:
    """The clips processed with a gallery lacking LATE; then LATE enrolled from frames of
    test_0 taken between the shots the pipeline embedded (0 s and 1 s)."""
    root = tmp_path_factory.mktemp("memory")
    settings = Settings(data_dir=root / "data", workers=1, memory_index_interval=0)
    gallery = read_gallery_file(cse546 / "encoding", settings.recognition.embedder, 128)
    assert gallery.remove(LATE) == 1
    gallery.save(settings.storage.gallery_path)
    ports = ports_of(settings)
    state = Past(settings, ports, context_of(settings, ports), {}, {}, root)
    for clip in CLIPS:
        state.process(clip, clips[clip])
    assert not state.results["test_0"]["people"], "test_0's person was not enrolled yet"
    photos = []
    for at in (0.5, 1.5):
        _, rgb = next(read_frames(clips["test_0"], start=at))
        photos.append(root / f"late-{at}.jpg")
        Image.fromarray(rgb).save(photos[-1])
    code, out, err = state.cli("enroll", LATE, *map(str, photos))
    assert code == 0, err + out
    yield state


@pytest.fixture
def no_media(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening any video or image fails from here on (in this process: the stages too)."""
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a search opened media")

    monkeypatch.setattr(media.VideoSource, "__init__", refuse)
    monkeypatch.setattr("av.open", refuse)
    monkeypatch.setattr(media, "load_image", refuse)
    with pytest.raises(AssertionError, match="opened media"):
        media.VideoSource(Path("any.mp4"))


def test_a_person_enrolled_later_is_found_in_past_videos_without_decoding(
        past: Past, no_media: None) -> None:
    for clip in CLIPS:
        past.ports.input.delete(f"{clip}.mp4")
    (stranger,) = past.results["test_0"]["strangers"]
    (match,) = past.search("--person", LATE)
    assert (match["video"], match["etag"], match["track_id"]) == (
        "test_0.mp4", past.etags["test_0"], stranger["track_id"])
    assert match["appearances"] == stranger["appearances"]
    assert match["distance"] <= 0.6 and match["similarity"] == round(
        1 - match["distance"] / 2, 3)
    part, member = split_face_key(match["face"]) or ("", "")
    assert part.startswith("test_0/") and member.startswith("track")
    code, out, _ = past.cli("search", "--person", LATE)  # the table
    assert code == 0 and "test_0.mp4" in out and "1 matches" in out


def test_search_agrees_with_recognition(past: Past) -> None:
    """A track recognized as someone is found for them at the very distance recognition
    measured (the same median over its shots), and others are not found for them."""
    record = past.ports.memory.get("test_7.mp4")
    assert record is not None
    (track,) = record.tracks
    assert track.person == "morgan_freeman" and track.distance is not None
    (match,) = past.search("--person", "morgan_freeman")
    assert match["video"] == "test_7.mp4"
    assert abs(match["distance"] - track.distance) < 1e-4
    assert past.results["test_7"]["people"][0]["distance"] == round(track.distance, 3)
    assert past.search("--person", "morgan_freeman", "--threshold", "0.2") == []


def test_the_index_snapshot_and_its_tail_answer_like_a_full_scan(
        past: Past, clips: dict[str, Path]) -> None:
    before = past.search("--person", LATE)
    code, out, err = past.cli("memory", "index", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["rebuilt"] and report["videos"] == len(CLIPS) and report["vectors"] > 0
    assert past.search("--person", LATE) == before, "through the snapshot"
    past.process("test_8", clips["test_8"])  # after the snapshot: only in the tail
    status = json.loads(past.cli("memory", "status")[1])
    assert status["changed_since_index"] == 1 and status["videos"] == len(CLIPS) + 1
    assert [m["video"] for m in past.search("--person", "president_obama")] == ["test_8.mp4"]
    again = json.loads(past.cli("memory", "index", "--json")[1])
    assert not again["rebuilt"] and again["changed"] == 1 and again["videos"] == 4
    assert [m["video"] for m in past.search("--person", "president_obama")] == ["test_8.mp4"]


def test_processing_the_same_content_again_adds_nothing(past: Past,
                                                       clips: dict[str, Path]) -> None:
    changes = past.ports.memory.changes(0)
    before = past.search("--person", "president_biden")
    past.process("test_1", clips["test_1"])  # the same bytes: the same etag
    assert past.ports.memory.changes(0) == changes
    assert past.search("--person", "president_biden") == before
    assert [v.video for v in past.ports.memory.videos()].count("test_1.mp4") == 1


def test_reembed_replaces_an_older_embedders_faces_from_their_crops(
        past: Past, no_media: None) -> None:
    record = past.ports.memory.get("test_1.mp4")
    assert record is not None
    truth = [t.embeddings.copy() for t in record.tracks]
    for track in record.tracks:
        track.embeddings = np.random.default_rng(1).normal(
            size=track.embeddings.shape).astype(np.float32)
    record.embedder, record.aligner = "an-older-embedder", "an-older-aligner"
    assert past.ports.memory.replace(record)
    assert past.search("--person", "president_biden") == [], "another embedder's vectors"
    code, out, err = past.cli("memory", "reembed")
    assert code == 0 and "re-embedded" in out and "1 videos" in out, err
    again = past.ports.memory.get("test_1.mp4")
    assert again is not None and again.embedder == "dlib-resnet"
    assert again.aligner == "dlib-5point"
    for track, vectors in zip(again.tracks, truth, strict=True):
        assert np.allclose(track.embeddings, vectors, atol=1e-5)
        assert track.person == "president_biden"
    assert [m["video"] for m in past.search("--person", "president_biden")] == ["test_1.mp4"]


def test_forget_a_video_and_a_person(past: Past) -> None:
    parts = [i.key for i in past.ports.stage1.list("test_0/")]
    assert parts, "test_0's crops are kept in its part"
    code, out, err = past.cli("forget", "--video", "test_0.mp4")
    assert code == 0 and "forgot 1 face tracks" in out, err
    assert list(past.ports.stage1.list("test_0/")) == [], "its crops are gone too"
    assert past.search("--person", LATE) == [], "nothing found: an empty answer, exit 0"
    assert past.cli("forget", "--video", "test_0.mp4")[0] == 2, "nothing left to forget"
    code, out, err = past.cli("forget", "--person", "morgan_freeman")
    assert code == 0, err
    record = past.ports.memory.get("test_7.mp4")
    assert record is not None and record.tracks == [], "their track is gone, the video stays"
    code, _, err = past.cli("search", "--person", "morgan_freeman")
    assert code == 2 and "nobody called 'morgan_freeman'" in err, "an unknown NAME"
    assert "morgan_freeman" not in past.ports.gallery.load().gallery.people
    audit = past.audit()
    assert {(a["action"], a["outcome"]) for a in audit} >= {
        ("enrol", "ok"), ("search", "ok"), ("forget", "ok"), ("forget", "error"),
        ("search", "error")}
    assert all(a["who"].startswith("cli:") and a["via"] == "cli" for a in audit)
    forgot = [a for a in audit if a["action"] == "forget" and a["outcome"] == "ok"]
    assert forgot[0]["target"] == {"video": "test_0.mp4"} and forgot[0]["tracks"] == 1


def test_retention_forgets_old_videos(past: Past) -> None:
    remembered = {v.video for v in past.ports.memory.videos()}
    assert remembered
    report = update_index(past.ports.memory, past.ports.stage1, "dlib-resnet", 128,
                          retention_days=1, now=time.time() + 2 * 86400)
    assert report.expired == len(remembered) and report.videos == 0
    assert list(past.ports.memory.videos()) == []
    assert past.search("--person", "president_obama") == []


def test_recognize_with_a_data_directory_remembers(tmp_path: Path, cse546: Path,
                                                   clips: dict[str, Path]) -> None:
    data = tmp_path / "data"
    code = runner.invoke(app, ["gallery", "import", str(cse546 / "encoding"),
                               "--data-dir", str(data)]).exit_code
    assert code == 0
    outcome = runner.invoke(app, ["recognize", str(clips["test_2"]), "--json", "--workers", "1",
                                  "--data-dir", str(data)])
    assert outcome.exit_code == 0, outcome.stderr
    found = runner.invoke(app, ["search", "--person", "mr_bean", "--json", "--data-dir",
                                str(data)])
    (match,) = [json.loads(line) for line in found.stdout.splitlines()]
    assert match["video"] == str(clips["test_2"].absolute())
    part, member = split_face_key(match["face"]) or ("", "")
    settings = Settings(data_dir=data)
    stage1 = ports_of(settings).stage1
    assert stage1.head(part) is not None, "the crops are kept for re-embedding"
    assert member.endswith(".jpg")
