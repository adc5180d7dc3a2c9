"""Pipeline overhead: upload of 100 distinct videos to the last result in the output bucket,
on the embedded default (folders + SQLite) and on SeaweedFS (S3), against the one-shot
`facereel recognize` on the same files, alternating in one run on the same cores.

    python bench/pipeline.py [--rounds 3] [--workers 2] [--out bench/out]

The service is started (and its models loaded) before the clock starts, as a long-running
service would be; the clock runs from the first upload to the moment the metadata table says
every video is published.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from common import FACEREEL, REPO_ROOT, bench_arguments, data_dir, recognize_measured, run_measured

sys.path.insert(0, str(REPO_ROOT))
from tests.support.servers import SeaweedServer

from facereel.config import Settings
from facereel.pipeline.wiring import build_ports

BENCH = Path(__file__).resolve().parent


def start_up(videos: Path, workers: int, out: Path) -> Timing:
    """What the one-shot spends before and after the work: the same command on one video."""
    single = out / "single"
    shutil.rmtree(single, ignore_errors=True)
    single.mkdir(parents=True)
    first = sorted(videos.glob("*.mp4"))[0]
    (single / first.name).symlink_to(first.resolve())
    return one_shot(single, workers, out)


Timing = tuple[float, float]  # (wall seconds, CPU seconds)


def _tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its living descendants."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def one_shot(videos: Path, workers: int, out: Path) -> Timing:
    # remembering, as the pipeline's remember stage does: the same work on both sides
    stats = recognize_measured(videos, workers, out / "oneshot-state", remember=True)
    return stats.wall_seconds, stats.cpu_seconds


def _wait_published(settings: Settings, count: int, timeout_s: float = 900.0) -> None:
    ports = build_ports(settings.storage, settings.recognition.embedder)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counts = ports.metadata.video_counts()
        if counts.get("done", 0) + counts.get("error", 0) >= count:
            return
        time.sleep(0.1)
    raise SystemExit(f"pipeline did not finish: {ports.metadata.video_counts()}")


def pipeline(videos: Path, workers: int, state: Path, env: dict[str, str],
             server_pid: int | None = None) -> Timing:
    """Upload-to-last-result wall time and CPU time of the service tree and the uploader
    (and of the storage server, when it runs on the same cores)."""
    shutil.rmtree(state, ignore_errors=True)
    # FACEREEL_PORT=0: the pipeline alone, as issue 3 measured it (the HTTP tier and its idle
    # app worker are measured by bench/images.py)
    environment = {**os.environ, **env, "FACEREEL_DATA_DIR": str(state),
                   "FACEREEL_POLL_INTERVAL": "0.2", "FACEREEL_SETTLE": "0.2",
                   "FACEREEL_PORT": "0"}
    base = [str(FACEREEL)]
    for command in (["provision"], ["gallery", "import", str(data_dir() / "encoding")]):
        subprocess.run([*base, *command], env=environment, check=True, capture_output=True)
    state.mkdir(parents=True, exist_ok=True)
    log = (state / "up.log").open("wb")
    service = subprocess.Popen([*base, "up", "--workers", str(workers)], env=environment,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(6.0)  # let the workers load their models: a service is already running
        settings = _settings_from(environment)
        cpu_before = _tree_cpu(service.pid) + (_tree_cpu(server_pid) if server_pid else 0.0)
        upload = run_measured([*base, "workload", str(videos), "--concurrency", "8"],
                              env=environment)
        started = time.perf_counter() - upload.wall_seconds
        _wait_published(settings, len(list(videos.glob("*.mp4"))))
        wall = time.perf_counter() - started
        cpu_after = _tree_cpu(service.pid) + (_tree_cpu(server_pid) if server_pid else 0.0)
        return wall, cpu_after - cpu_before + upload.cpu_seconds
    finally:
        service.send_signal(signal.SIGINT)
        service.wait(timeout=300)


def _settings_from(environment: dict[str, str]) -> Settings:
    """The service's Settings, read from its environment rather than ours."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(environment)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def measure(rounds: int, workers: int, out: Path, videos: Path) -> dict[str, Any]:
    names = ("one_shot", "embedded", "seaweedfs", "one_shot_start_up")
    results: dict[str, list[Timing]] = {name: [] for name in names}
    run = uuid.uuid4().hex[:6]  # fresh buckets every run and round: leftovers skip work
    with SeaweedServer(out / "seaweed") as weed:
        s3_env = {"AWS_ACCESS_KEY_ID": weed.access_key, "AWS_SECRET_ACCESS_KEY": weed.secret_key}
        for bucket in ("INPUT", "STAGE1", "OUTPUT"):
            s3_env[f"FACEREEL_{bucket}__BACKEND"] = "s3"
            s3_env[f"FACEREEL_{bucket}__ENDPOINT"] = weed.endpoint
        for number in range(rounds):
            fresh = {**s3_env, **{f"FACEREEL_{b}__NAME": f"{b.lower()}-{run}-{number}"
                                  for b in ("INPUT", "STAGE1", "OUTPUT")}}
            runs: dict[str, Callable[[], Timing]] = {
                "one_shot": partial(one_shot, videos, workers, out),
                "embedded": partial(pipeline, videos, workers, out / "pipe-local", {}),
                "seaweedfs": partial(pipeline, videos, workers, out / "pipe-s3", fresh,
                                     weed.pid),
                "one_shot_start_up": partial(start_up, videos, workers, out),
            }
            for name in names if number % 2 == 0 else reversed(names):
                results[name].append(runs[name]())
                wall, cpu = results[name][-1]
                print(f"round {number + 1}: {name} {wall:.2f} s (CPU {cpu:.2f} s)", flush=True)
    return _report(results, len(list(videos.glob("*.mp4"))))


def _ratios(pipe: list[Timing], base: list[float], index: int) -> list[float]:
    return [p[index] / b - 1 for p, b in zip(pipe, base, strict=True)]


def _report(results: dict[str, list[Timing]], count: int) -> dict[str, Any]:
    report: dict[str, Any] = {"videos": count}
    for name, timings in results.items():
        walls, cpus = [t[0] for t in timings], [t[1] for t in timings]
        report[name] = {"seconds": [round(w, 2) for w in walls],
                        "cpu_seconds": [round(c, 2) for c in cpus],
                        "median_s": round(statistics.median(walls), 2),
                        "median_cpu_s": round(statistics.median(cpus), 2),
                        "videos_per_s": round(count / statistics.median(walls), 2)}
    one, boot = results["one_shot"], results["one_shot_start_up"]
    # the service is warm when the clock starts; the one-shot pays its start-up in its time
    warm_wall = [o[0] - s[0] for o, s in zip(one, boot, strict=True)]
    warm_cpu = [o[1] - s[1] for o, s in zip(one, boot, strict=True)]
    report["one_shot_warm"] = {"seconds": [round(w, 2) for w in warm_wall],
                               "cpu_seconds": [round(c, 2) for c in warm_cpu]}
    for name in ("embedded", "seaweedfs"):
        row = report[name]
        for label, base, index in (("wall", [o[0] for o in one], 0), ("wall_vs_warm", warm_wall, 0),
                                   ("cpu", [o[1] for o in one], 1), ("cpu_vs_warm", warm_cpu, 1)):
            ratios = _ratios(results[name], base, index)
            row[f"overhead_{label}_pct"] = round(100 * statistics.median(ratios), 1)
            row[f"overhead_{label}_per_round"] = [round(100 * r, 1) for r in ratios]
    return report


def main(argv: list[str] | None = None) -> int:
    args = bench_arguments(argv, __doc__ or "")
    videos = args.out / "videos"
    if not (videos / "manifest.json").exists():
        subprocess.run([sys.executable, str(BENCH / "make_videos.py"), "--out", str(videos)],
                       check=True)
    report = measure(args.rounds, args.workers, args.out, videos)
    (args.out / "pipeline.json").write_text(json.dumps(report, indent=1))
    for name in ("one_shot", "one_shot_start_up", "embedded", "seaweedfs"):
        row = report[name]
        extra = (f"; overhead: wall {row['overhead_wall_pct']}% (vs warm one-shot "
                 f"{row['overhead_wall_vs_warm_pct']}%), CPU {row['overhead_cpu_pct']}% "
                 f"(vs warm {row['overhead_cpu_vs_warm_pct']}%)"
                 if "overhead_wall_pct" in row else "")
        print(f"{name}: median {row['median_s']} s, CPU {row['median_cpu_s']} s "
              f"({row['videos_per_s']} videos/s){extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
