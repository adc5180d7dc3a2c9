"""`facereel results` and `facereel videos` as a script runs them: real processes whose stdout
is a pipe, in a terminal 40 columns wide that asks for colours. `--json` lines arrive whole
(never wrapped, never coloured), the next page's cursor on stderr; filters, `--cursor` and
`--all` page through; a bad cursor, time or status is one line on stderr and exit code 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from facereel.ports.metadata import VideoRecord
from facereel.ports.metadata.sqlite import SqliteMetadata
from tests.support.pipeline import FACEREEL

T2001 = 978307200.0
LONG = "lectures/2001/" + "a very long lecture name, été " * 5 + "final.mp4"
ROWS = [(f"clip-{n}.mp4", "done", n, ["ada", "grace"] if n % 2 else ["ada"]) for n in range(6)]
ROWS += [(LONG, "done", 10, ["ada", "grace"]), ("broken.mp4", "error", 11, []),
         ("stuck.mp4", "dead", 12, [])]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-browse") / "data"
    metadata = SqliteMetadata(folder / "facereel.db")
    for key, status, minute, people in ROWS:
        error = ("corrupt_video", "not a video") if status != "done" else ("", "")
        metadata.put_video(VideoRecord(key, "etag", status, T2001 + 60 * minute,
                                       f"{key}.json" if status != "dead" else "", people,
                                       *error))
    return folder


def run(data_dir: Path, *args: str, columns: int = 40) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "FORCE_COLOR": "1", "TERM": "xterm-256color"}
    return subprocess.run([*FACEREEL, *args, "--data-dir", str(data_dir)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # pipes


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout, "no colour codes in machine output"
    return [json.loads(line) for line in result.stdout.splitlines()]


def cursor_of(result: subprocess.CompletedProcess[str]) -> str:
    [line] = [line for line in result.stderr.splitlines() if line.startswith("more:")]
    return line.split("--cursor ", 1)[1].split()[0]


def test_json_lines_arrive_whole_through_a_narrow_coloured_pipe(data_dir: Path) -> None:
    first = run(data_dir, "results", "--json", "--person", "ada", "--limit", "2")
    rows = lines(first)
    assert [r["key"] for r in rows] == [LONG, "clip-5.mp4"]
    assert rows[0]["people"] == ["ada", "grace"] and rows[0]["updated"] == \
        "2001-01-01T00:10:00.000Z"
    rest = lines(run(data_dir, "results", "--json", "--person", "ada", "--limit", "2",
                     "--cursor", cursor_of(first)))
    assert [r["key"] for r in rest] == ["clip-4.mp4", "clip-3.mp4"]
    every = run(data_dir, "results", "--json", "--person", "ada", "--limit", "2", "--all")
    assert [r["key"] for r in lines(every)] == [LONG] + [f"clip-{n}.mp4" for n in range(5, -1, -1)]
    assert "more:" not in every.stderr


def test_filters(data_dir: Path) -> None:
    cases = [(("results", "--status", "error"), ["broken.mp4"]),
             (("results",), ["broken.mp4", LONG] + [f"clip-{n}.mp4" for n in range(5, -1, -1)]),
             (("videos", "--status", "dead", "--status", "error"), ["stuck.mp4", "broken.mp4"]),
             (("videos", "--person", "grace", "--since", "2001-01-01T00:02",
               "--until", "2001-01-01T00:05:00Z"), ["clip-5.mp4", "clip-3.mp4"]),
             (("videos", "--since", "2001-01-01T01:12:00+01:00"), ["stuck.mp4"])]
    for args, expected in cases:
        assert [r["key"] for r in lines(run(data_dir, *args, "--json"))] == expected, args


def test_the_table_for_people(data_dir: Path) -> None:
    table = run(data_dir, "videos", "--status", "dead", "--status", "error", columns=200)
    assert table.returncode == 0 and "stuck.mp4" in table.stdout and "broken.mp4" in table.stdout
    assert "corrupt_video" in table.stdout
    assert run(data_dir, "results", "--person", "nobody").stderr.strip() == "no results match"


@pytest.mark.parametrize("args", [("--cursor", "not-a-cursor"), ("--since", "last week"),
                                  ("--status", "queued"),
                                  ("--since", "2002-01-01", "--until", "2001-01-01")])
def test_a_bad_option_is_one_line(data_dir: Path, args: tuple[str, ...]) -> None:
    result = run(data_dir, "results", *args)
    assert result.returncode == 2 and result.stdout == ""
    said = re.sub(r"\x1b\[[0-9;]*m", "", result.stderr)  # stderr is for people: coloured
    assert len(said.strip().splitlines()) == 1 and said.startswith("error (invalid_"), said
