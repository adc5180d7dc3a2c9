"""Strangers are inspectable: every unknown face track is an entry of `strangers` (stable
`track_id`, appearances, box, a face crop, who it resembles most), never in `people`, in the
one-shot CLI (crops written under --out) and in the pipeline (crops served by the API)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from facereel.cli import app
from facereel.config import Settings
from facereel.core.gallery_io import read_gallery_file
from facereel.pipeline.parts import read_member, split_face_key
from tests.support.stages import context_of, ports_of, run_through


def _gallery_without(cse546: Path, person: str, path: Path) -> Path:
    read_gallery_file(cse546 / "encoding", "dlib-resnet", 128).without(person).save(path)
    return path


def test_the_one_shot_cli_lists_strangers_with_their_crops(clips: dict[str, Path],
                                                          cse546: Path, tmp_path: Path) -> None:
    gallery = _gallery_without(cse546, "morgan_freeman", tmp_path / "g.npz")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "talk.mp4").symlink_to(clips["test_7"])
    out = tmp_path / "out"
    outcome = CliRunner().invoke(app, ["recognize", str(tmp_path / "in"), "--out", str(out),
                                       "--gallery", str(gallery), "--workers", "1",
                                       "--data-dir", str(tmp_path / "state")])
    assert outcome.exit_code == 0, outcome.stderr
    doc = json.loads((out / "talk.mp4.json").read_text())
    assert doc["schema_version"] == 2 and doc["people"] == [] and doc["unknown_faces"] == 1
    (stranger,) = doc["strangers"]
    assert stranger["track_id"] == "0" and stranger["appearances"][0]["start_ms"] == 0
    assert stranger["nearest"] and stranger["distance"] > 0.6, "resembles, but is nobody"
    crop = out / stranger["face"]
    assert crop.read_bytes()[:3] == b"\xff\xd8\xff", "the crop is a JPEG beside the document"
    assert (out / "talk.txt").read_text() == "unknown\n", "a stranger is never the top person"
    again = CliRunner().invoke(app, ["recognize", str(tmp_path / "in"), "--json", "--gallery",
                                     str(gallery), "--workers", "1", "--data-dir",
                                     str(tmp_path / "state")])
    assert json.loads(again.stdout)["strangers"][0]["track_id"] == "0", "stable ids"


def test_the_pipeline_points_a_stranger_at_a_shot_of_its_part(settings: Settings,
                                                             clips: dict[str, Path],
                                                             cse546: Path,
                                                             tmp_path: Path) -> None:
    gallery = _gallery_without(cse546, "president_trump", tmp_path / "g.npz")
    local = settings.with_overrides(data_dir=tmp_path, gallery=gallery,
                                    metadata_db=tmp_path / "meta.db")
    ports = ports_of(local)
    info = ports.input.put_file("speech.mp4", clips["test_0"])
    run_through(context_of(local, ports), "split", {"key": "speech.mp4", "etag": info.etag})
    doc = json.loads(ports.output.get_bytes("speech.mp4.json"))
    (stranger,) = doc["strangers"]
    where = split_face_key(stranger["face"])
    assert where is not None
    assert read_member(ports.stage1.get_bytes(where[0]), where[1])[:3] == b"\xff\xd8\xff"
