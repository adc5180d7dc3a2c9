"""The event pipeline end to end on the embedded defaults (folders + SQLite), with faults."""

from __future__ import annotations

import contextlib
import csv
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.bad_inputs import make_bad_inputs
from tests.support.pipeline import Pipeline


def workload_folder(cse546: Path, folder: Path) -> Path:
    """The 100-video workload of test_case_2.csv: links to the 8 clips under 100 names."""
    folder.mkdir(parents=True, exist_ok=True)
    for row in csv.DictReader((cse546 / "test_case_2.csv").read_text().splitlines()):
        (folder / row["video"]).symlink_to(cse546 / "videos" / row["same_bytes_as"])
    return folder


def grade(pipeline: Pipeline, cse546: Path) -> str:
    result = pipeline.cli("grade", "--mapping", str(cse546 / "mapping"),
                          "--students", str(cse546 / "student_data.json"))
    return result.stdout.strip()


def output_sets(data_dir: Path) -> dict[str, set[str]]:
    """Output files grouped by stem (`x.mp4.json`, `x.txt`, `x.csv` -> `x`): each input must
    have exactly json+txt+csv."""
    sets: dict[str, set[str]] = {}
    for path in (data_dir / "buckets" / "output").rglob("*"):
        if path.is_file() and ".facereel" not in path.parts:
            relative = path.relative_to(data_dir / "buckets" / "output")
            stem = relative.with_suffix("")
            if path.suffix == ".json":
                stem = stem.with_suffix("")
            sets.setdefault(str(stem), set()).add(path.suffix)
    return sets


def results_by_stem(data_dir: Path) -> dict[str, dict[str, Any]]:
    folder = data_dir / "buckets" / "output"
    return {str(p.relative_to(folder).with_suffix("").with_suffix("")): json.loads(p.read_text())
            for p in folder.rglob("*.json") if ".facereel" not in p.parts}


@pytest.mark.slow
def test_workload_graded_from_the_output_bucket(cse546: Path, tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path / "state", {"FACEREEL_MEMORY_INDEX_INTERVAL": "1"})
    pipeline.prepare(cse546)
    pipeline.start()
    try:
        uploaded = pipeline.cli("workload", str(workload_folder(cse546, tmp_path / "w")),
                                "--concurrency", "8")
        assert "uploaded 100 files" in uploaded.stdout
        status = pipeline.wait_done(100)
        memory = wait_indexed(pipeline, 100)  # `up` keeps the face index up to date
        assert memory["videos"] == memory["tracks"] == 100
    finally:
        code = pipeline.stop()
    assert code == 0, "Ctrl-C exits cleanly"
    assert status["videos"] == {"done": 100}
    assert grade(pipeline, cse546) == "100/100"
    sets = output_sets(tmp_path / "state")
    assert len(sets) == 100 and all(s == {".json", ".txt", ".csv"} for s in sets.values())
    doc = json.loads((tmp_path / "state/buckets/output/test_7.mp4.json").read_text())
    assert doc["people"][0]["metadata"]["major"] == "math"


def wait_indexed(pipeline: Pipeline, videos: int, timeout_s: float = 60.0) -> dict[str, Any]:
    """`facereel memory status` once the index snapshot holds `videos` videos."""
    deadline = time.monotonic() + timeout_s
    while True:
        memory: dict[str, Any] = json.loads(pipeline.cli("memory", "status").stdout)
        if memory["indexed_videos"] >= videos or time.monotonic() > deadline:
            assert memory["indexed_videos"] == videos, memory
            return memory
        time.sleep(0.5)


def busy_worker(pipeline: Pipeline) -> int | None:
    """The pid of a worker holding a message right now (from the note each worker keeps of
    what it holds), or None when all are idle."""
    for note in (pipeline.data_dir / "run").glob("worker-*.json"):
        with contextlib.suppress(OSError, ValueError):
            return int(json.loads(note.read_text())["pid"])
    return None


@pytest.mark.slow
def test_killed_workers_lose_nothing_and_duplicate_nothing(
        cse546: Path, clips: dict[str, Path], tmp_path: Path,
        security_report: dict[str, Any]) -> None:
    pipeline = Pipeline(tmp_path / "state")
    pipeline.prepare(cse546)
    bad = make_bad_inputs(tmp_path / "bad", clips["test_5"])
    uploads = workload_folder(cse546, tmp_path / "w")
    for name in ("zero.mp4", "truncated.mp4", "notes.mp4"):
        (uploads / f"bad_{name}").write_bytes((tmp_path / "bad" / name).read_bytes())
    pipeline.start()
    try:
        pipeline.cli("workload", str(uploads), "--concurrency", "8")
        refused = pipeline.cli("workload", str(uploads / "bad_zero.mp4"), "--prefix", "../")
        assert "refused 1" in refused.stdout
        rng = random.Random(7)
        for _ in range(6):  # kill a worker in the middle of a message, six times
            time.sleep(rng.uniform(0.3, 1.5))
            deadline = time.monotonic() + 10
            while (pid := busy_worker(pipeline)) is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid is not None:
                pipeline.kill_worker(pid)
        handed_back = pipeline.log.read_text(errors="replace").count("handed it back")
        pipeline.kill_all()  # and a power cut: `up` and everything under it
        pipeline.start()
        status = pipeline.wait_done(104)
    finally:
        code = pipeline.stop()
    assert code == 0
    assert handed_back >= 3, "kills landed while messages were in flight and were handed back"
    assert status["dead_letters"] == 0, status
    assert status["videos"] == {"done": 100, "error": 4}, status
    assert grade(pipeline, cse546) == "100/100"
    sets = output_sets(tmp_path / "state")
    assert len(sets) == 104 and all(s == {".json", ".txt", ".csv"} for s in sets.values())
    docs = results_by_stem(tmp_path / "state")
    codes = {stem: doc.get("error", {}).get("code") for stem, doc in docs.items() if "bad" in stem}
    assert codes == {"bad_zero": "empty_file", "bad_truncated": "truncated",
                     "bad_notes": "not_media", "%2E%2E/bad_zero": "invalid_key"}, codes
    security_report["worker kills and a power cut"] = {
        "videos": 104, "workers_killed_mid_message": handed_back, "whole_service_kills": 1,
        "lost": 0, "duplicated": 0, "dead_letters": status["dead_letters"]}
    del bad
