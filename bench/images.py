"""Image web tier: throughput and latency of `POST /v1/images` on a real `facereel up`, with
1 and 2 fixed app-tier workers and with the autoscaler (1..2 workers, the default), against
the core recognising the same frames in-process (no HTTP, no queues) on one core.

    python bench/images.py [--rounds 3] [--burst 200] [--sequential 40] [--out bench/out]

Per configuration: `sequential` requests one after another (latency of a lone request), then
a burst of `burst` concurrent requests (throughput, p50/p95 under load). Every answer is
checked against who is in the frame. Configurations alternate within each round, on the same
cores; the tables report medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from common import CLIP_PERSON, REPO_ROOT, clip_path, data_dir

sys.path.insert(0, str(REPO_ROOT))
from tests.support.frames import cut_frames
from tests.support.http_service import HttpService

from facereel.app.recognition import build_recognizer
from facereel.config import Settings

Frames = list[tuple[Path, str]]
CONFIGS = {  # name -> (min app workers, max app workers)
    "1 worker": (1, 1),
    "2 workers": (2, 2),
    "autoscaled 1..2": (1, 2),
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def in_process(frames: Frames, state: Path, count: int) -> dict[str, float]:
    """The reference: the core's recognizer called directly, one image at a time."""
    settings = Settings(data_dir=state, gallery=data_dir() / "encoding")
    recognizer = build_recognizer(settings)
    latencies = []
    for number in range(count):
        path, person = frames[number % len(frames)]
        started = time.perf_counter()
        result = recognizer.recognize_image_bytes(path.read_bytes(), path.name)
        latencies.append(time.perf_counter() - started)
        if not result.people or result.people[0].person != person:
            raise SystemExit(f"in-process answer wrong for {path.name}")
    return {"p50_s": statistics.median(latencies), "rps": count / sum(latencies)}


async def _burst(service: HttpService, frames: Frames, count: int) -> tuple[float, list[float]]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=service.url, limits=limits, timeout=300,
                                 headers={"Authorization": f"Bearer {service.api_key}"}) as client:
        async def one(number: int) -> float:
            path, person = frames[number % len(frames)]
            started = time.perf_counter()
            response = await client.post("/v1/images",
                                         files={"inputFile": (path.name, path.read_bytes())})
            if response.text != f"{path.name}:{person}":
                raise SystemExit(f"wrong answer {response.status_code} {response.text!r}")
            return time.perf_counter() - started

        started = time.perf_counter()
        latencies = await asyncio.gather(*(one(n) for n in range(count)))
        return time.perf_counter() - started, list(latencies)


def measure(service: HttpService, frames: Frames, sequential: int,
            burst: int) -> dict[str, float]:
    with service.client() as client:
        lone = []
        for number in range(sequential):
            path, person = frames[number % len(frames)]
            started = time.perf_counter()
            answer = client.post("/v1/images", files={"inputFile": (path.name,
                                                                    path.read_bytes())})
            lone.append(time.perf_counter() - started)
            if answer.text != f"{path.name}:{person}":
                raise SystemExit(f"wrong answer {answer.text!r}")
        wall, latencies = asyncio.run(_burst(service, frames, burst))
        peak = int(client.get("/v1/status").json()["workers"]["app"])
    return {"lone_p50_s": statistics.median(lone), "burst_rps": burst / wall,
            "burst_p50_s": statistics.median(latencies),
            "burst_p95_s": percentile(latencies, 0.95), "app_workers_after": peak}


def run_config(name: str, frames: Frames, out: Path, sequential: int,
               burst: int) -> dict[str, float]:
    low, high = CONFIGS[name]
    state = out / "images-state"
    shutil.rmtree(state, ignore_errors=True)
    service = HttpService(state, workers=1, env={
        "FACEREEL_APP_WORKERS_MIN": str(low), "FACEREEL_APP_WORKERS_MAX": str(high),
        "FACEREEL_SCALE_IN_DELAY": "20"})
    with service.running(data_dir()):
        time.sleep(3 if low > 1 else 0.5)  # let every fixed worker load its models
        return measure(service, frames, sequential, burst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--sequential", type=int, default=40)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    clips = {name: clip_path(name) for name in CLIP_PERSON}
    frames = cut_frames(clips, CLIP_PERSON, args.out / "image-frames", per_clip=6)
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in ["in-process", *CONFIGS]}
    for number in range(args.rounds):
        rounds["in-process"].append(in_process(frames, args.out / "images-ref", args.sequential))
        for name in CONFIGS:
            rounds[name].append(run_config(name, frames, args.out, args.sequential, args.burst))
            print(f"round {number + 1}: {name}: {rounds[name][-1]}", flush=True)
    report = summarize(rounds, args)
    (args.out / "images.json").write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)


def summarize(rounds: dict[str, list[dict[str, float]]], args: Any) -> dict[str, Any]:
    medians = {name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
               for name, runs in rounds.items()}
    return {"rounds": args.rounds, "burst": args.burst, "sequential": args.sequential,
            "frames": "6 per clip x 8 clips", "medians": medians, "runs": rounds}


def print_table(report: dict[str, Any]) -> None:
    medians = report["medians"]
    reference = medians["in-process"]
    print(f"\nmedians of {report['rounds']} rounds; burst = {report['burst']} concurrent")
    print(f"{'configuration':<18} {'lone p50':>9} {'burst req/s':>12} {'x in-process':>13} "
          f"{'burst p50':>10} {'burst p95':>10}")
    print(f"{'in-process (ref)':<18} {reference['p50_s'] * 1000:>7.0f}ms {reference['rps']:>12.1f}"
          f" {1.0:>13.2f} {'-':>10} {'-':>10}")
    for name in CONFIGS:
        row = medians[name]
        print(f"{name:<18} {row['lone_p50_s'] * 1000:>7.0f}ms {row['burst_rps']:>12.1f} "
              f"{row['burst_rps'] / reference['rps']:>13.2f} {row['burst_p50_s']:>9.2f}s "
              f"{row['burst_p95_s']:>9.2f}s")


if __name__ == "__main__":
    main()
