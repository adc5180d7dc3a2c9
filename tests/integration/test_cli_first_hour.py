"""Issue 11 through the real `facereel` executable, as a new user meets it: machine output
survives a pipe, every user error is one line with a non-zero exit, enrolment says what it
skipped and whom a face already belongs to, the workload generator never overwrites itself,
and the help is complete."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from facereel.cli import app
from tests.conftest import CLIP_PEOPLE
from tests.support.media_factory import read_frames

FACEREEL = [sys.executable, "-m", "facereel"]
# what makes rich wrap and colour: a narrow terminal and a forced colour mode
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HOSTILE_TERMINAL = {"COLUMNS": "40", "FORCE_COLOR": "1", "TERM": "xterm-256color"}


def run(*args: str, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The command with stdout piped (as `| jq` would), on a hostile terminal."""
    return subprocess.run([*FACEREEL, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **HOSTILE_TERMINAL, **(env or {})}, check=False)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error's only line, without the colour codes the forced terminal asked for."""
    lines = ANSI.sub("", result.stderr).strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_machine_output_is_plain_json_through_a_pipe(cse546: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert run("metadata", "load", str(cse546 / "student_data.json"),
               "--data-dir", data).returncode == 0
    listed = run("metadata", "list", "--data-dir", data)
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    expected = json.loads((cse546 / "student_data.json").read_text())
    assert {r["name"] for r in records} == {r["name"] for r in expected}
    assert "\x1b[" not in listed.stdout, "no colour codes"
    status = run("status", "--json", "--data-dir", data)
    (line,) = status.stdout.splitlines()
    report = json.loads(line)
    assert set(report["queues"]) >= {"split", "publish", "images"}
    assert report["workers"] == {}, "no service is running"


def test_user_errors_are_one_line(tmp_path: Path, clips: dict[str, Path]) -> None:
    data = str(tmp_path / "data")
    clip = str(clips["test_7"])
    cases = [
        (["recognize", clip, "--sampling", "bogus", "--data-dir", data], {}, "--sampling bogus"),
        (["recognize", clip, "--workers", "-1", "--data-dir", data], {}, "--workers -1"),
        (["gallery", "list", "--data-dir", data], {"FACEREEL_WORKERS": "many"},
         "FACEREEL_WORKERS='many'"),
        (["recognize", clip, "--data-dir", data], {"FACEREEL_THRESHOLD": "-2"},
         "FACEREEL_THRESHOLD"),
    ]
    for args, env, named in cases:
        line = one_line_error(run(*args, env=env))
        assert named in line, line
    unreachable = {"FACEREEL_INPUT__BACKEND": "s3", "FACEREEL_INPUT__ENDPOINT": "http://127.0.0.1:9",
                   "FACEREEL_QUEUE_BACKEND": "sqs", "FACEREEL_SQS_ENDPOINT": "http://127.0.0.1:9",
                   "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
                   "FACEREEL_AWS_REGION": "us-east-1"}
    line = one_line_error(run("status", "--data-dir", data, env=unreachable))
    assert "127.0.0.1:9" in line


def test_workload_gives_every_upload_its_own_key(clips: dict[str, Path],
                                                 tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("test_1", "test_2", "test_7"):
        (folder / f"{name}.mp4").symlink_to(clips[name])
    data = tmp_path / "data"
    result = run("workload", str(folder), "--count", "7", "--data-dir", str(data))
    assert result.returncode == 0 and "uploaded 7 files" in result.stdout, result.stderr
    stored = {p.name for p in (data / "buckets" / "input").iterdir() if p.suffix == ".mp4"}
    assert stored == {"test_1.mp4", "test_2.mp4", "test_7.mp4", "test_1-r1.mp4",
                      "test_2-r1.mp4", "test_7-r1.mp4", "test_1-r2.mp4"}


def _save_frame(clip: Path, at: float, path: Path) -> Path:
    _, rgb = next(read_frames(clip, start=at))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def test_enrolment_reports_skips_and_identity_clashes(clips: dict[str, Path],
                                                      tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    person = CLIP_PEOPLE["test_7"]
    folder = tmp_path / "people" / person
    _save_frame(clips["test_7"], 0.2, folder / "a.jpg")
    (folder / "notes.txt").write_text("taken at the talk\n")
    (folder / "clip.mp4").symlink_to(clips["test_7"])
    enrolled = run("enroll", "--from-folder", str(tmp_path / "people"), "--data-dir", data)
    assert enrolled.returncode == 0, enrolled.stderr
    text = " ".join(ANSI.sub("", enrolled.stdout).split())  # for people: coloured, forced
    assert f"ok {person} <- a.jpg" in text
    assert f"skipped {person} <- notes.txt" in text and f"skipped {person} <- clip.mp4" in text
    photo = _save_frame(clips["test_7"], 0.9, tmp_path / "another.jpg")
    clash = run("enroll", "Someone Else", str(photo), "--data-dir", data)
    assert clash.returncode == 1
    assert f"already matches '{person}'" in " ".join(ANSI.sub("", clash.stdout).split())
    forced = run("enroll", "Someone Else", str(photo), "--force", "--data-dir", data)
    assert forced.returncode == 0
    assert "2 people, 2 faces" in " ".join(ANSI.sub("", forced.stdout).split())
    nobody = run("gallery", "remove", "nobody", "--data-dir", data)
    assert nobody.returncode == 1 and "no such person 'nobody'" in ANSI.sub("", nobody.stderr)


def test_recognize_without_a_gallery_reports_strangers(clips: dict[str, Path],
                                                       tmp_path: Path) -> None:
    result = run("recognize", str(clips["test_7"]), "--json", "--workers", "1",
                 "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "facereel enroll" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["people"] == [] and len(doc["strangers"]) == doc["unknown_faces"] == 1


def _commands(group: typer.Typer) -> list[list[str]]:
    command = typer.main.get_command(group)
    found: list[list[str]] = []

    def walk(node: object, path: list[str]) -> None:
        children = getattr(node, "commands", None)
        if children is None:
            found.append(path)
            return
        for name, child in children.items():
            walk(child, [*path, name])

    walk(command, [])
    return found


@pytest.mark.parametrize("width", ["60", "200"])
def test_help_describes_every_option_and_no_flag_takes_a_value(width: str) -> None:
    commands = _commands(app)
    assert len(commands) >= 15
    for path in commands:
        shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": width})
        assert shown.exit_code == 0, path
        assert "<bool>" not in shown.stdout, path
    root = typer.main.get_command(app)
    for path in commands:
        node = root
        for name in path:
            node = node.commands[name]  # type: ignore[attr-defined]
        for param in node.params:
            where = f"facereel {' '.join(path)}: {param.name}"
            assert getattr(param, "help", None), f"{where} has no help"
