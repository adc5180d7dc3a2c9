"""Throughput of facereel against the coursework reference pipeline, on 100 distinct videos.

Builds the videos (bench/make_videos.py) once, then runs, on the same 2 cores and in an order
that rotates every round, five whole processes as a user runs them (start-up included):

- `reference`: `python bench/reference.py` (the coursework pipeline: first frame, HOG);
- `adaptive`, `first`, `keyframes`: `facereel recognize --json --workers 2 --sampling ...`;
- `decode-only`: `python bench/decode_only.py`, PyAV decoding every reference frame of the
  same files and nothing else (the floor for a pipeline that must see the whole clip).

The machine is shared and noisy, so ratios are computed per round from runs made back to
back and the median over rounds is reported: the speed-up against the reference (wall time)
and the CPU time against decode-only. Accuracy is graded the coursework way (mapping +
student_data.json); memory is the peak RSS of each whole process tree.

    python bench/throughput.py [--rounds 5] [--workers 2] [--out bench/out]
        [--systems reference,adaptive,first,keyframes,decode-only]
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from common import RunStats, bench_parser, data_dir, grade, recognize_measured, run_measured

BENCH = Path(__file__).resolve().parent

Predictions = dict[str, str | None]
Runner = Callable[[Path, int, Path], tuple[RunStats, Predictions | None]]


@dataclass(frozen=True)
class System:
    name: str
    label: str
    run: Runner


def build_videos(out: Path) -> Path:
    videos = out / "videos"
    stats = run_measured([sys.executable, str(BENCH / "make_videos.py"), "--out", str(videos)])
    if stats.returncode:
        raise SystemExit(f"make_videos failed:\n{stats.stdout}")
    return videos


def run_reference(videos: Path, workers: int, out: Path) -> tuple[RunStats, Predictions]:
    predictions = out / "reference_predictions.json"
    stats = run_measured([sys.executable, str(BENCH / "reference.py"), str(videos),
                          "--out", str(predictions), "--workers", str(workers)])
    if stats.returncode:
        raise SystemExit(f"reference failed:\n{stats.stdout}")
    return stats, json.loads(predictions.read_text())


def run_facereel(sampling: str, videos: Path, workers: int,
                 out: Path) -> tuple[RunStats, Predictions]:
    stats = recognize_measured(videos, workers, out / f"facereel-{sampling}-state", sampling)
    docs = [json.loads(line) for line in stats.stdout.splitlines() if line.strip()]
    predictions = {d["video"]: (d["people"][0]["person"] if d["people"] else None) for d in docs}
    return stats, predictions


def run_decode_only(videos: Path, workers: int, out: Path) -> tuple[RunStats, None]:
    stats = run_measured([sys.executable, str(BENCH / "decode_only.py"), str(videos),
                          "--workers", str(workers)])
    if stats.returncode:
        raise SystemExit(f"decode_only failed:\n{stats.stdout}")
    return stats, None


SYSTEMS = (
    System("reference", "reference (first frame, HOG x2 upsampled, 68 landmarks, dlib-bin)",
           run_reference),
    System("adaptive", "facereel (adaptive default)", partial(run_facereel, "adaptive")),
    System("first", "facereel `--sampling first`", partial(run_facereel, "first")),
    System("keyframes", "facereel `--sampling keyframes`", partial(run_facereel, "keyframes")),
    System("decode-only", "PyAV decode-only of the reference frames", run_decode_only),
)


def _summary(runs: list[RunStats], count: int) -> dict[str, Any]:
    wall = statistics.median(r.wall_seconds for r in runs)
    cpu = statistics.median(r.cpu_seconds for r in runs)
    return {
        "wall_s": [round(r.wall_seconds, 2) for r in runs],
        "median_wall_s": round(wall, 2),
        "videos_per_s": round(count / wall, 2),
        "cpu_s": [round(r.cpu_seconds, 2) for r in runs],
        "cpu_ms_per_video": round(cpu / count * 1000),
        "peak_rss_mib": round(max(r.peak_rss_bytes for r in runs) / 2**20, 1),
    }


def _per_round(runs: dict[str, list[RunStats]], name: str, base: str,
               field: str, invert: bool) -> list[float]:
    """`name`'s figure over `base`'s (or the reverse), round by round."""
    if name not in runs or base not in runs:
        return []
    pairs = zip(runs[name], runs[base], strict=True)
    ratios = [getattr(b, field) / getattr(a, field) if invert else
              getattr(a, field) / getattr(b, field) for a, b in pairs]
    return [round(r, 2) for r in ratios]


def measure(rounds: int, workers: int, out: Path, chosen: list[System]) -> dict[str, Any]:
    videos = build_videos(out)
    count = len(list(videos.glob("*.mp4")))
    mapping, students = data_dir() / "mapping", data_dir() / "student_data.json"
    runs: dict[str, list[RunStats]] = {s.name: [] for s in chosen}
    predictions: dict[str, Predictions | None] = {}
    for number in range(rounds):
        # rotate the order so each system runs early and late as often as the others
        order = chosen[number % len(chosen):] + chosen[:number % len(chosen)]
        for system in order:
            stats, predictions[system.name] = system.run(videos, workers, out)
            runs[system.name].append(stats)
            print(f"round {number + 1}: {system.name} {stats.wall_seconds:.2f} s, "
                  f"CPU {stats.cpu_seconds:.2f} s", flush=True)
    report: dict[str, Any] = {"videos": count, "workers": workers, "rounds": rounds}
    for system in chosen:
        summary = _summary(runs[system.name], count)
        summary["label"] = system.label
        found = predictions[system.name]
        if found is not None:
            summary["right"], summary["total"] = grade(found, mapping, students)
        speedups = _per_round(runs, system.name, "reference", "wall_seconds", invert=True)
        cpu_ratios = _per_round(runs, system.name, "decode-only", "cpu_seconds", invert=False)
        summary["speedup_per_round"] = speedups
        summary["median_speedup"] = statistics.median(speedups) if speedups else None
        summary["cpu_vs_decode_per_round"] = cpu_ratios
        summary["median_cpu_vs_decode"] = statistics.median(cpu_ratios) if cpu_ratios else None
        report[system.name] = summary
    return report


def table(report: dict[str, Any], names: list[str]) -> str:
    rows = ["| pipeline (2 workers) | median wall | videos/s | CPU per video | right | "
            "speed-up vs reference | CPU vs decode-only | peak RSS (tree) |",
            "|---|---|---|---|---|---|---|---|"]
    for name in names:
        r = report[name]
        right = f"{r['right']}/{r['total']}" if "right" in r else "-"
        speedup = f"{r['median_speedup']}x" if r["median_speedup"] is not None else "-"
        cpu = (f"{r['median_cpu_vs_decode']}x" if r["median_cpu_vs_decode"] is not None
               else "-")
        rows.append(f"| {r['label']} | {r['median_wall_s']} s | {r['videos_per_s']} | "
                    f"{r['cpu_ms_per_video']} ms | {right} | {speedup} | {cpu} | "
                    f"{r['peak_rss_mib']} MiB |")
    for name in names:
        r = report[name]
        rows.append(f"\n{name}: wall {r['wall_s']}, CPU {r['cpu_s']}; speed-up per round "
                    f"{r['speedup_per_round']}, CPU vs decode-only {r['cpu_vs_decode_per_round']}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--systems", default=",".join(s.name for s in SYSTEMS),
                        help="which to run, comma-separated")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    known = {s.name: s for s in SYSTEMS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown systems {unknown}; known: {sorted(known)}")
    args.out.mkdir(parents=True, exist_ok=True)
    report = measure(args.rounds, args.workers, args.out, [known[n] for n in names])
    (args.out / "throughput.json").write_text(json.dumps(report, indent=1))
    print(table(report, names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
