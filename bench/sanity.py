"""Sanity run of the benchmark inputs: build them, run the reference, time a plain decode.

Reproduces the figures quoted when the bench was introduced: reference seconds, videos/s,
accuracy and peak RSS of its process tree on the 100 videos, and the long video's size,
duration and `ffmpeg -threads 2 -i long.mp4 -f null -` time (median of 3). Writes them to
bench/out/sanity.json.

    python bench/sanity.py [--out bench/out] [--landmarks 68] [--skip-build]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import av
import imageio_ffmpeg

from common import data_dir, read_mapping, read_students, run_measured

BENCH = Path(__file__).resolve().parent


def _python_script(name: str, *args: str) -> list[str]:
    """argv running a sibling bench script with this interpreter."""
    return [sys.executable, str(BENCH / name), *args]


def build_inputs(out: Path) -> dict[str, float]:
    """Build the 100 videos and the long video (each skipped or rebuilt by its own script)."""
    timings = {}
    for key, command in (
        ("make_videos_s", _python_script("make_videos.py", "--out", str(out / "videos"))),
        ("make_long_video_s", _python_script("make_long_video.py", "--out", str(out / "long"))),
    ):
        stats = run_measured(command)
        if stats.returncode:
            raise SystemExit(f"{command} failed:\n{stats.stdout}")
        print(stats.stdout.strip())
        timings[key] = round(stats.wall_seconds, 1)
    return timings


def reference_figures(out: Path, landmarks: int) -> dict[str, Any]:
    """Run bench/reference.py as its own process tree and grade its predictions."""
    data = data_dir()
    predictions_path = out / f"reference_predictions_{landmarks}.json"
    stats = run_measured(
        _python_script(
            "reference.py", str(out / "videos"), "--out", str(predictions_path),
            "--mapping", str(data / "mapping"), "--students", str(data / "student_data.json"),
            "--landmarks", str(landmarks),
        )
    )  # fmt: skip
    if stats.returncode:
        raise SystemExit(f"reference failed:\n{stats.stdout}")
    predictions: dict[str, str | None] = json.loads(predictions_path.read_text())
    return {
        "landmarks": landmarks,
        "process_wall_s": round(stats.wall_seconds, 2),
        "videos_per_s": round(len(predictions) / stats.wall_seconds, 2),
        "peak_tree_rss_mib": round(stats.peak_rss_bytes / 2**20, 1),
        "reference_stdout": stats.stdout.strip(),
        "wrong": wrong_videos(predictions, out / "videos" / "manifest.json"),
    }


def wrong_videos(predictions: dict[str, str | None], manifest_path: Path) -> list[dict[str, Any]]:
    """The videos graded wrong, with what was predicted and how the video was made."""
    mapping, students = read_mapping(), read_students()
    manifest = {v["video"]: v for v in json.loads(manifest_path.read_text())["videos"]}
    wrong = []
    for video, label in mapping.items():
        person = predictions.get(video)
        if person is None or students.get(person) != label:
            made = manifest.get(video, {})
            wrong.append({"video": video, "predicted": person, "truth": made.get("person"),
                          "size": [made.get("width"), made.get("height")],
                          "transforms": made.get("transforms")})  # fmt: skip
    return wrong


def decode_figures(video: Path, runs: int = 3) -> dict[str, Any]:
    """Size, duration and the median of `runs` plain 2-thread ffmpeg decodes of the long video."""
    with av.open(str(video)) as container:
        duration = float(container.duration or 0) / 1e6
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error"]
    command += ["-threads", "2", "-i", str(video), "-f", "null", "-"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        stats = run_measured(command)
        times.append(time.perf_counter() - start)
        if stats.returncode:
            raise SystemExit(f"ffmpeg decode failed: {stats.stdout}")
    return {
        "size_mb": round(video.stat().st_size / 1e6, 2),
        "duration_s": round(duration, 3),
        "decode_runs_s": [round(t, 2) for t in times],
        "decode_median_s": round(statistics.median(times), 2),
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description="sanity run of the bench inputs")
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    parser.add_argument("--landmarks", type=int, choices=(5, 68), default=68)
    parser.add_argument("--skip-build", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {} if args.skip_build else build_inputs(args.out)
    report["reference"] = reference_figures(args.out, args.landmarks)
    report["long_video"] = decode_figures(args.out / "long" / "long.mp4")
    (args.out / "sanity.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
