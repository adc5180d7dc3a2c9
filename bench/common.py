"""Shared helpers for the benchmark scripts: data location, ground truth, grading, peak memory.

The bench scripts compare facereel against a reference pipeline on the CSE546 data; they all
need the same view of the ground truth and the same measuring stick, so it lives here once.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # the ground truth lives beside the tests
from tests.support.truth import CLIP_PEOPLE  # noqa: E402

FACEREEL = Path(sys.executable).parent / "facereel"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "cse546"
CLIP_NAMES = ("test_0", "test_1", "test_2", "test_4", "test_5", "test_6", "test_7", "test_8")

# Who appears in each of the 8 real clips (checked against mapping + student_data.json by
# check_clip_people, so a wrong entry cannot silently skew a benchmark).
CLIP_PERSON: dict[str, str] = CLIP_PEOPLE


def data_dir() -> Path:
    """The CSE546 data folder: $FACEREEL_TEST_DATA, else the shared checkout next to the repo."""
    path = Path(os.environ.get("FACEREEL_TEST_DATA", str(DEFAULT_DATA_DIR)))
    if not (path / "videos").is_dir():
        raise FileNotFoundError(f"CSE546 data not found at {path} (set FACEREEL_TEST_DATA)")
    return path


def clip_path(clip: str) -> Path:
    """Path of a real clip given its stem ('test_5') or file name ('test_5.mp4')."""
    return data_dir() / "videos" / f"{Path(clip).stem}.mp4"


def read_workload(path: Path | None = None) -> dict[str, str]:
    """test_case_2.csv as {workload video: clip stem it is byte-identical to}, in file order."""
    csv_path = path or data_dir() / "test_case_2.csv"
    with csv_path.open(newline="") as handle:
        return {row["video"]: Path(row["same_bytes_as"]).stem for row in csv.DictReader(handle)}


def read_mapping(path: Path | None = None) -> dict[str, str]:
    """The grader's `mapping` file as {video: "major,year"}."""
    mapping_path = path or data_dir() / "mapping"
    result: dict[str, str] = {}
    for line in mapping_path.read_text().splitlines():
        if line.strip():
            video, _, label = line.strip().partition(":")
            result[video] = label
    return result


def read_students(path: Path | None = None) -> dict[str, str]:
    """student_data.json as {person: "major,year"}, the string the grader compares."""
    students_path = path or data_dir() / "student_data.json"
    records = json.loads(students_path.read_text())
    return {rec["name"]: f"{rec['major']},{rec['year']}" for rec in records}


def check_clip_people() -> None:
    """Fail loudly if CLIP_PERSON disagrees with the grader's mapping for any workload video."""
    mapping, students = read_mapping(), read_students()
    for video, clip in read_workload().items():
        expected = mapping[video]
        got = students[CLIP_PERSON[clip]]
        if got != expected:
            raise ValueError(f"{video} (clip {clip}): mapping says {expected}, CLIP_PERSON {got}")


def grade(
    predictions: dict[str, str | None], mapping_path: Path, students_path: Path
) -> tuple[int, int]:
    """The coursework grader: right when the predicted person's "major,year" equals the mapping.

    Videos missing from `predictions`, or predicted as None, count as wrong.
    """
    mapping = read_mapping(mapping_path)
    students = read_students(students_path)
    right = 0
    for video, label in mapping.items():
        person = predictions.get(video)
        if person is not None and students.get(person) == label:
            right += 1
    return right, len(mapping)


class RunStats(NamedTuple):
    """What one measured command run cost: wall time, peak RSS of its process tree, outcome,
    and the CPU time (user + system) of the whole tree, which a noisy shared machine disturbs
    far less than wall time."""

    wall_seconds: float
    peak_rss_bytes: int
    returncode: int
    stdout: str
    cpu_seconds: float = 0.0


def _tree_rss(proc: psutil.Process) -> int:
    """Total RSS of a process and all its live descendants (vanished ones count as zero)."""
    total = 0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def run_measured(command: list[str], interval: float = 0.05, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> RunStats:
    """Run `command`, sampling its whole process tree's RSS every `interval` seconds.

    Worker pools fork children whose memory the parent's own RSS does not show, so the sum over
    the tree is what a machine actually has to provide. Stdout goes to a temp file so a chatty
    command can never block on a full pipe while we sample.
    """
    with tempfile.TemporaryFile(mode="w+") as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        popen = subprocess.Popen(command, stdout=out, cwd=cwd, env=env)
        proc = psutil.Process(popen.pid)
        peak = 0
        while popen.poll() is None:
            peak = max(peak, _tree_rss(proc))
            time.sleep(interval)
        wall = time.perf_counter() - start
        # a reaped child's usage includes every descendant it waited for (pool workers, ffmpeg)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out.seek(0)
        return RunStats(wall, peak, popen.returncode, out.read(), cpu)


def recognize_measured(target: Path, workers: int, state: Path,
                       sampling: str = "adaptive", remember: bool = False) -> RunStats:
    """`facereel recognize --json` on `target` against the `encoding` gallery, measured, with
    a fresh state folder; exits with facereel's output when it fails. The state folder is a
    data directory, so `remember` says whether faces go into the face memory as they would
    for a user's `--data-dir` (off: recognition alone, as `recognize` without one)."""
    shutil.rmtree(state, ignore_errors=True)
    env = {**os.environ, "FACEREEL_REMEMBER_FACES": "true" if remember else "false"}
    stats = run_measured([str(FACEREEL), "recognize", str(target), "--json", "--workers",
                          str(workers), "--gallery", str(data_dir() / "encoding"),
                          "--data-dir", str(state), "--sampling", sampling], env=env)
    if stats.returncode:
        raise SystemExit(f"facereel recognize failed:\n{stats.stdout}")
    return stats


def bench_parser(description: str) -> argparse.ArgumentParser:
    """The options every video benchmark takes: --rounds, --workers, --out."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out")
    return parser


def bench_arguments(argv: list[str] | None, description: str) -> argparse.Namespace:
    return bench_parser(description).parse_args(argv)


def _drain_into_encoder(output: Any, stream: Any, frames: queue.Queue[Any]) -> None:
    """Encode and mux frames from `frames` until None arrives, then flush the encoder."""
    while (frame := frames.get()) is not None:
        output.mux(stream.encode(frame))
    output.mux(stream.encode(None))


def encode_frames(output: Any, stream: Any, frames: Iterable[Any]) -> int:
    """Encode PyAV frames (pts already set) into `stream` of `output`; returns the count.

    libx264 runs in a thread of its own. Sharing a thread with the decoder and swscale, the
    same frames gave different bytes from run to run (libx264 evidently reads memory it never
    initialised, whose contents depended on the heap churn around it in that thread's arena);
    separated, the builds are byte-reproducible.
    """
    pending: queue.Queue[Any] = queue.Queue(maxsize=8)
    encoder = threading.Thread(target=_drain_into_encoder, args=(output, stream, pending))
    encoder.start()
    count = 0
    try:
        for frame in frames:
            pending.put(frame)
            count += 1
    finally:
        pending.put(None)
        encoder.join()
    return count
