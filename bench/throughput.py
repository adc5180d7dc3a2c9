"""Throughput of facereel against the coursework reference pipeline, on 100 distinct videos.

Builds the videos (bench/make_videos.py) once, then runs, in alternating order and on the same
2 cores, `python bench/reference.py` and `facereel recognize --json --workers 2` for several
rounds. The machine is shared and noisy, so each round's ratio is computed from runs made
back to back, and the median over rounds is reported. Accuracy is graded the coursework way
(mapping + student_data.json); memory is the peak RSS of each whole process tree.

    python bench/throughput.py [--rounds 3] [--workers 2] [--out bench/out]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from common import RunStats, bench_arguments, data_dir, grade, recognize_measured, run_measured

BENCH = Path(__file__).resolve().parent


def build_videos(out: Path) -> Path:
    videos = out / "videos"
    stats = run_measured([sys.executable, str(BENCH / "make_videos.py"), "--out", str(videos)])
    if stats.returncode:
        raise SystemExit(f"make_videos failed:\n{stats.stdout}")
    return videos


def run_reference(videos: Path, workers: int, out: Path) -> tuple[RunStats, dict[str, Any]]:
    predictions = out / "reference_predictions.json"
    stats = run_measured([sys.executable, str(BENCH / "reference.py"), str(videos),
                          "--out", str(predictions), "--workers", str(workers)])
    if stats.returncode:
        raise SystemExit(f"reference failed:\n{stats.stdout}")
    return stats, json.loads(predictions.read_text())


def run_facereel(videos: Path, workers: int, out: Path) -> tuple[RunStats, dict[str, Any]]:
    stats = recognize_measured(videos, workers, out / "facereel-state")
    docs = [json.loads(line) for line in stats.stdout.splitlines() if line.strip()]
    predictions = {d["video"]: (d["people"][0]["person"] if d["people"] else None) for d in docs}
    return stats, predictions


def _summary(runs: list[RunStats], right: int, total: int, count: int) -> dict[str, Any]:
    wall = statistics.median(r.wall_seconds for r in runs)
    cpu = statistics.median(r.cpu_seconds for r in runs)
    return {
        "wall_s": [round(r.wall_seconds, 2) for r in runs],
        "median_wall_s": round(wall, 2),
        "videos_per_s": round(count / wall, 2),
        "cpu_s": [round(r.cpu_seconds, 2) for r in runs],
        "cpu_ms_per_video": round(cpu / count * 1000),
        "right": right,
        "total": total,
        "peak_rss_mib": round(max(r.peak_rss_bytes for r in runs) / 2**20, 1),
    }


def measure(rounds: int, workers: int, out: Path) -> dict[str, Any]:
    videos = build_videos(out)
    count = len(list(videos.glob("*.mp4")))
    mapping, students = data_dir() / "mapping", data_dir() / "student_data.json"
    reference_runs: list[RunStats] = []
    facereel_runs: list[RunStats] = []
    ratios = []
    for number in range(rounds):
        order = (run_reference, run_facereel) if number % 2 == 0 else (run_facereel, run_reference)
        results = {}
        for runner in order:
            results[runner.__name__] = runner(videos, workers, out)
            print(f"round {number + 1}: {runner.__name__} "
                  f"{results[runner.__name__][0].wall_seconds:.2f} s", flush=True)
        ref_stats, ref_predictions = results["run_reference"]
        fr_stats, fr_predictions = results["run_facereel"]
        reference_runs.append(ref_stats)
        facereel_runs.append(fr_stats)
        ratios.append(ref_stats.wall_seconds / fr_stats.wall_seconds)
    ref_right, total = grade(ref_predictions, mapping, students)
    fr_right, _ = grade(fr_predictions, mapping, students)
    return {
        "videos": count,
        "workers": workers,
        "rounds": rounds,
        "reference": _summary(reference_runs, ref_right, total, count),
        "facereel": _summary(facereel_runs, fr_right, total, count),
        "speedup_per_round": [round(r, 2) for r in ratios],
        "median_speedup": round(statistics.median(ratios), 2),
        "cpu_ratio": round(statistics.median(r.cpu_seconds for r in reference_runs)
                           / statistics.median(r.cpu_seconds for r in facereel_runs), 2),
    }


def table(report: dict[str, Any]) -> str:
    rows = ["| pipeline | median wall (s) | videos/s | CPU ms/video | right | peak RSS (MiB) |",
            "|---|---|---|---|---|---|"]
    for name in ("reference", "facereel"):
        r = report[name]
        rows.append(f"| {name} | {r['median_wall_s']} | {r['videos_per_s']} | "
                    f"{r['cpu_ms_per_video']} | {r['right']}/{r['total']} | {r['peak_rss_mib']} |")
    rows.append(f"\nspeed-up (median of per-round wall-time ratios): {report['median_speedup']}x "
                f"(rounds: {report['speedup_per_round']}); CPU-time ratio {report['cpu_ratio']}x")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = bench_arguments(argv, __doc__ or "")
    args.out.mkdir(parents=True, exist_ok=True)
    report = measure(args.rounds, args.workers, args.out)
    (args.out / "throughput.json").write_text(json.dumps(report, indent=1))
    print(table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
