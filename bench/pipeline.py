"""Pipeline overhead: upload of 100 distinct videos to the last result in the output bucket,
on the embedded default (folders + SQLite) and on SeaweedFS (S3), against the one-shot
`facereel recognize` on the same files, alternating in one run on the same cores.

    python bench/pipeline.py [--rounds 3] [--workers 2] [--out bench/out]

The service is started (and its models loaded) before the clock starts, as a long-running
service would be; the clock runs from the first upload to the moment the metadata table says
every video is published.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from common import REPO_ROOT, data_dir, run_measured

sys.path.insert(0, str(REPO_ROOT))
from tests.support.servers import SeaweedServer

from facereel.config import Settings
from facereel.runtime.wiring import build_ports

BENCH = Path(__file__).resolve().parent
FACEREEL = Path(sys.executable).parent / "facereel"


def one_shot(videos: Path, workers: int, out: Path) -> float:
    state = out / "oneshot-state"
    shutil.rmtree(state, ignore_errors=True)
    stats = run_measured([str(FACEREEL), "recognize", str(videos), "--json", "--workers",
                          str(workers), "--gallery", str(data_dir() / "encoding"),
                          "--data-dir", str(state)])
    if stats.returncode:
        raise SystemExit(f"one-shot failed:\n{stats.stdout}")
    return stats.wall_seconds


def _wait_published(settings: Settings, count: int, timeout_s: float = 900.0) -> None:
    ports = build_ports(settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counts = ports.metadata.video_counts()
        if counts.get("done", 0) + counts.get("error", 0) >= count:
            return
        time.sleep(0.1)
    raise SystemExit(f"pipeline did not finish: {ports.metadata.video_counts()}")


def pipeline(videos: Path, workers: int, state: Path, env: dict[str, str]) -> float:
    shutil.rmtree(state, ignore_errors=True)
    environment = {**os.environ, **env, "FACEREEL_DATA_DIR": str(state),
                   "FACEREEL_POLL_INTERVAL": "0.2", "FACEREEL_SETTLE": "0.2"}
    base = [str(FACEREEL)]
    subprocess.run([*base, "gallery", "import", str(data_dir() / "encoding")],
                   env=environment, check=True, capture_output=True)
    log = (state / "up.log").open("wb")
    service = subprocess.Popen([*base, "up", "--workers", str(workers)], env=environment,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(6.0)  # let the workers load their models: a service is already running
        os.environ.update({k: v for k, v in environment.items() if k.startswith("FACEREEL_")})
        settings = Settings()
        started = time.perf_counter()
        subprocess.run([*base, "workload", str(videos), "--concurrency", "8"],
                       env=environment, check=True, capture_output=True)
        _wait_published(settings, len(list(videos.glob("*.mp4"))))
        return time.perf_counter() - started
    finally:
        service.send_signal(signal.SIGINT)
        service.wait(timeout=300)
        for key in [k for k in os.environ if k.startswith("FACEREEL_")]:
            del os.environ[key]


def measure(rounds: int, workers: int, out: Path, videos: Path) -> dict[str, Any]:
    results: dict[str, list[float]] = {"one_shot": [], "embedded": [], "seaweedfs": []}
    with SeaweedServer(out / "seaweed") as weed:
        s3_env = {"AWS_ACCESS_KEY_ID": weed.access_key, "AWS_SECRET_ACCESS_KEY": weed.secret_key}
        for bucket in ("INPUT", "STAGE1", "OUTPUT"):
            s3_env[f"FACEREEL_{bucket}__BACKEND"] = "s3"
            s3_env[f"FACEREEL_{bucket}__ENDPOINT"] = weed.endpoint
        for number in range(rounds):
            # fresh buckets every round: leftovers would let the stages skip work
            fresh = {**s3_env, "FACEREEL_INPUT__NAME": f"input-{number}",
                     "FACEREEL_STAGE1__NAME": f"stage-1-{number}",
                     "FACEREEL_OUTPUT__NAME": f"output-{number}"}
            runs: dict[str, Callable[[], float]] = {
                "one_shot": partial(one_shot, videos, workers, out),
                "embedded": partial(pipeline, videos, workers, out / "pipe-local", {}),
                "seaweedfs": partial(pipeline, videos, workers, out / "pipe-s3", fresh),
            }
            order = list(runs) if number % 2 == 0 else list(reversed(runs))
            for name in order:
                results[name].append(runs[name]())
                print(f"round {number + 1}: {name} {results[name][-1]:.2f} s", flush=True)
    return _report(results, len(list(videos.glob("*.mp4"))))


def _report(results: dict[str, list[float]], count: int) -> dict[str, Any]:
    report: dict[str, Any] = {"videos": count}
    for name, times in results.items():
        report[name] = {"seconds": [round(t, 2) for t in times],
                        "median_s": round(statistics.median(times), 2),
                        "videos_per_s": round(count / statistics.median(times), 2)}
    for name in ("embedded", "seaweedfs"):
        overheads = [p / o - 1 for p, o in zip(results[name], results["one_shot"], strict=True)]
        report[name]["overhead_per_round"] = [round(100 * x, 1) for x in overheads]
        report[name]["median_overhead_pct"] = round(100 * statistics.median(overheads), 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    args = parser.parse_args(argv)
    videos = args.out / "videos"
    if not (videos / "manifest.json").exists():
        subprocess.run([sys.executable, str(BENCH / "make_videos.py"), "--out", str(videos)],
                       check=True)
    report = measure(args.rounds, args.workers, args.out, videos)
    (args.out / "pipeline.json").write_text(json.dumps(report, indent=1))
    for name in ("one_shot", "embedded", "seaweedfs"):
        row = report[name]
        extra = f", overhead {row['median_overhead_pct']}%" if "median_overhead_pct" in row else ""
        print(f"{name}: median {row['median_s']} s ({row['videos_per_s']} videos/s){extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
