"""A long recording: every appearance found and timed, at a cost bounded by plain decoding.

Builds (once) a few minutes of 720p from the clips (bench/make_long_video.py: face-free
stretches of several seconds, each person on screen for 1-2 s, at least twice each) and
compares, in alternating runs on the same cores, the time `ffmpeg -threads 2 -i v -f null -`
needs merely to decode it with the time `facereel recognize v --workers 2` needs to say who is
in it and when. Every appearance in truth.json must come back with start and end within 0.5 s.

    python bench/long_video.py [--rounds 3] [--workers 2] [--out bench/out]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

import imageio_ffmpeg

from common import RunStats, bench_arguments, recognize_measured, run_measured

BENCH = Path(__file__).resolve().parent
TOLERANCE_S = 0.5


def build(out: Path) -> Path:
    folder = out / "long"
    stats = run_measured([sys.executable, str(BENCH / "make_long_video.py"), "--out",
                          str(folder)])
    if stats.returncode:
        raise SystemExit(f"make_long_video failed:\n{stats.stdout}")
    return folder


def decode_seconds(video: Path) -> tuple[float, float]:
    """ffmpeg's wall and CPU seconds to decode every frame of `video` (2 threads)."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-threads", "2",
               "-i", str(video), "-f", "null", "-"]
    stats = run_measured(command)
    if stats.returncode:
        raise SystemExit(f"ffmpeg failed on {video}")
    return stats.wall_seconds, stats.cpu_seconds


def recognise(video: Path, workers: int, out: Path) -> tuple[RunStats, dict[str, Any]]:
    stats = recognize_measured(video, workers, out / "facereel-long-state")
    return stats, json.loads(stats.stdout)


def check(result: dict[str, Any], truth: list[dict[str, Any]]) -> dict[str, Any]:
    """Match each true appearance to a found one of the same person within the tolerance."""
    found = [(p["person"], a["start_ms"] / 1000, a["end_ms"] / 1000)
             for p in result["people"] for a in p["appearances"]]
    unmatched = list(found)
    misses, errors = [], []
    for item in truth:
        hits = [f for f in unmatched if f[0] == item["person"]
                and abs(f[1] - item["start_s"]) <= TOLERANCE_S
                and abs(f[2] - item["end_s"]) <= TOLERANCE_S]
        if not hits:
            misses.append(item)
            continue
        best = min(hits, key=lambda f: abs(f[1] - item["start_s"]) + abs(f[2] - item["end_s"]))
        unmatched.remove(best)
        errors += [abs(best[1] - item["start_s"]), abs(best[2] - item["end_s"])]
    return {
        "appearances": len(truth),
        "found_within_0_5_s": len(truth) - len(misses),
        "missed": misses,
        "extra": unmatched,
        "max_time_error_s": round(max(errors, default=0.0), 3),
        "mean_time_error_s": round(statistics.fmean(errors) if errors else 0.0, 3),
        "unknown_faces": result["unknown_faces"],
    }


def measure(rounds: int, workers: int, out: Path) -> dict[str, Any]:
    folder = build(out)
    video = folder / "long.mp4"
    truth = json.loads((folder / "truth.json").read_text())
    decode, ours, ratios, cpu_ratios, peaks = [], [], [], [], []
    result: dict[str, Any] = {}
    for number in range(rounds):
        if number % 2:
            stats, result = recognise(video, workers, out)
            plain, plain_cpu = decode_seconds(video)
        else:
            plain, plain_cpu = decode_seconds(video)
            stats, result = recognise(video, workers, out)
        decode.append(plain)
        ours.append(stats.wall_seconds)
        peaks.append(stats.peak_rss_bytes)
        ratios.append(stats.wall_seconds / plain)
        cpu_ratios.append(stats.cpu_seconds / plain_cpu)
        print(f"round {number + 1}: decode {plain:.2f} s (CPU {plain_cpu:.2f} s), facereel "
              f"{stats.wall_seconds:.2f} s (CPU {stats.cpu_seconds:.2f} s)", flush=True)
    return {
        "video": {"seconds": truth["seconds"], "size": f"{truth['width']}x{truth['height']}",
                  "fps": truth["fps"], "megabytes": round(video.stat().st_size / 2**20, 1)},
        "decode_s": [round(d, 2) for d in decode],
        "facereel_s": [round(s, 2) for s in ours],
        "median_decode_s": round(statistics.median(decode), 2),
        "median_facereel_s": round(statistics.median(ours), 2),
        "ratio_per_round": [round(r, 2) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 2),
        "cpu_ratio_per_round": [round(r, 2) for r in cpu_ratios],
        "median_cpu_ratio": round(statistics.median(cpu_ratios), 2),
        "peak_rss_mib": round(max(peaks) / 2**20, 1),
        "accuracy": check(result, truth["appearances"]),
    }


def main(argv: list[str] | None = None) -> int:
    args = bench_arguments(argv, __doc__ or "")
    report = measure(args.rounds, args.workers, args.out)
    (args.out / "long_video.json").write_text(json.dumps(report, indent=1))
    accuracy = report["accuracy"]
    print(f"decode {report['median_decode_s']} s, facereel {report['median_facereel_s']} s, "
          f"ratio {report['median_ratio']}x (target <= 1.3x; CPU time "
          f"{report['median_cpu_ratio']}x); appearances "
          f"{accuracy['found_within_0_5_s']}/{accuracy['appearances']} within 0.5 s, "
          f"{len(accuracy['extra'])} extra, max error {accuracy['max_time_error_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
