"""The CLI contract scripts rely on, end to end on real clips."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from facereel.cli import app
from tests.conftest import CLIP_PEOPLE
from tests.support.media_factory import read_frames

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    """Exit code and stdout; stderr is checked through `invoke_err`."""
    outcome = runner.invoke(app, list(args))
    return outcome.exit_code, outcome.stdout


def invoke_err(*args: str) -> tuple[int, str]:
    outcome = runner.invoke(app, list(args))
    return outcome.exit_code, " ".join(outcome.stderr.split())


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "state")


def test_enroll_then_recognise_a_still_image(clips: dict[str, Path], tmp_path: Path,
                                             data_dir: str) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for index, start in enumerate((0.0, 0.6)):
        _, rgb = next(read_frames(clips["test_7"], start=start))
        Image.fromarray(rgb).save(photos / f"morgan{index}.jpg")
    _, other = next(read_frames(clips["test_2"], start=1.0))
    Image.fromarray(other).save(tmp_path / "query.png")
    _, same = next(read_frames(clips["test_7"], start=0.9))
    Image.fromarray(same).save(tmp_path / "query2.webp")

    code, output = invoke("enroll", "Morgan Freeman", str(photos / "morgan0.jpg"),
                          str(photos / "morgan1.jpg"), "--data-dir", data_dir)
    assert code == 0, output
    assert "1 people, 2 faces" in output
    code, output = invoke("recognize", str(tmp_path / "query2.webp"), str(tmp_path / "query.png"),
                          "--json", "--data-dir", data_dir, "--workers", "1")
    first, second = (json.loads(line) for line in output.splitlines())
    assert first["people"][0]["person"] == "Morgan Freeman"
    assert second["people"] == [] and second["unknown_faces"] == 1, "Mr Bean is not enrolled"


def test_enroll_from_folder_and_gallery_commands(clips: dict[str, Path], tmp_path: Path,
                                                 data_dir: str, cse546: Path) -> None:
    for clip in ("test_4", "test_8"):
        folder = tmp_path / "people" / CLIP_PEOPLE[clip]
        folder.mkdir(parents=True)
        _, rgb = next(read_frames(clips[clip], start=0.2))
        Image.fromarray(rgb).save(folder / "a.jpg")
    (tmp_path / "people" / "nobody").mkdir()
    Image.new("RGB", (200, 200), "gray").save(tmp_path / "people" / "nobody" / "wall.jpg")

    code, output = invoke("enroll", "--from-folder", str(tmp_path / "people"),
                          "--data-dir", data_dir)
    assert code == 0, output
    assert "skipped nobody <- wall.jpg: wall.jpg: no face found" in " ".join(output.split())
    code, output = invoke("gallery", "import", str(cse546 / "encoding"), "--data-dir", data_dir)
    assert code == 0 and "imported 11 people" in output
    code, output = invoke("gallery", "list", "--data-dir", data_dir)
    assert "johnny_dep" in output and "president_obama" in output and "bush" in output
    code, message = invoke_err("gallery", "import", str(cse546 / "data.pt"),
                               "--data-dir", data_dir)
    assert code == 2
    assert "embedder_mismatch" in message and "512" in message


def test_recognise_folder_writes_seed_files_and_grades(cse546: Path, tmp_path: Path,
                                                       data_dir: str) -> None:
    """The 100-video workload (test_case_2: the 8 clips copied) graded 100/100."""
    workload = tmp_path / "workload"
    workload.mkdir()
    rows = list(csv.DictReader((cse546 / "test_case_2.csv").read_text().splitlines()))
    assert len(rows) == 100
    for row in rows:
        (workload / row["video"]).symlink_to(cse546 / "videos" / row["same_bytes_as"])
    assert invoke("gallery", "import", str(cse546 / "encoding"), "--data-dir", data_dir)[0] == 0
    assert invoke("metadata", "load", str(cse546 / "student_data.json"),
                  "--data-dir", data_dir)[0] == 0
    out = tmp_path / "results"
    code, _ = invoke("recognize", str(workload), "--out", str(out), "--workers", "2",
                     "--data-dir", data_dir)
    assert code == 0
    assert len(list(out.glob("*.mp4.json"))) == 100
    assert (out / "test_7.txt").read_text() == "morgan_freeman\n"
    assert (out / "test_7.csv").read_text() == "name,major,year\nmorgan_freeman,math,senior\n"

    code, output = invoke("grade", str(out), "--mapping", str(cse546 / "mapping"),
                          "--students", str(cse546 / "student_data.json"))
    assert code == 0
    assert output.strip() == "100/100"


def test_out_keeps_inputs_of_the_same_name_apart(clips: dict[str, Path], cse546: Path,
                                                 tmp_path: Path, data_dir: str) -> None:
    for folder, clip in (("a", "test_7"), ("b", "test_0")):
        (tmp_path / "in" / folder).mkdir(parents=True)
        (tmp_path / "in" / folder / "x.mp4").symlink_to(clips[clip])
    (tmp_path / "in" / "a" / "x.mkv").symlink_to(clips["test_4"])  # same stem, other name
    assert invoke("gallery", "import", str(cse546 / "encoding"), "--data-dir", data_dir)[0] == 0
    out = tmp_path / "out"
    code, _ = invoke("recognize", str(tmp_path / "in"), "--out", str(out), "--workers", "1",
                     "--data-dir", data_dir)
    assert code == 0
    docs = {p.relative_to(out).as_posix(): json.loads(p.read_text())
            for p in out.rglob("*.json")}
    assert sorted(docs) == ["a/x.mkv.json", "a/x.mp4.json", "b/x.mp4.json"]
    assert docs["a/x.mp4.json"]["people"][0]["person"] == "morgan_freeman"
    assert docs["b/x.mp4.json"]["people"][0]["person"] == "president_trump"
    assert docs["a/x.mkv.json"]["people"][0]["person"] == CLIP_PEOPLE["test_4"]
    assert (out / "b" / "x.txt").read_text() == "president_trump\n"
