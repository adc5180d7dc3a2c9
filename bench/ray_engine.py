"""The Ray engine's overhead: the 100 re-encodings read from a SeaweedFS bucket by
`facereel recognize`, on the local pool, on a Ray cluster of one node and of two nodes (one
machine: this measures overhead, not speed-up), all at equal cores, in alternating rounds.

    python bench/ray_engine.py [--rounds 3] [--workers 2] [--out bench/out]
                               [--videos bench/out/videos]

The clusters (`ray.cluster_utils.Cluster` on 127.0.0.1: one node of N CPUs, or two of N/2)
are started before their runs, as a cluster is before a backfill; `recognize --engine ray`
joins them (`--address`). A last run per round starts its own local Ray (no `--address`), to
show what a one-off command pays for Ray's start. CPU is that of every process involved (the
command and its workers, the cluster's GCS, raylets and actors, SeaweedFS), sampled while it
runs; overheads are medians of per-round ratios (each round's runs saw the same machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from common import FACEREEL, REPO_ROOT, bench_arguments, data_dir, read_workload

sys.path.insert(0, str(REPO_ROOT))
from tests.support import provisioned
from tests.support.ray_cluster import loopback_cluster
from tests.support.servers import SeaweedServer
from tests.support.truth import CLIP_PEOPLE

from facereel.ports.objectstore.s3 import make_s3_client

BUCKET = "bench-videos"
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # read by Ray at import: loopback only
           "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


class Run(NamedTuple):
    wall_s: float
    cpu_s: float
    summary: dict[str, Any]  # the Ray driver's summary (empty for the local pool)


class CpuSampler:
    """CPU seconds of this process's descendants (not itself) while a run lasts: each
    process's last sample minus its first, so processes that end mid-run still count (up
    to one interval)."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        for proc in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()  # its own: a reaped child is counted as itself
                used = times.user + times.system
                self.first.setdefault(proc.pid, used)
                self.last[proc.pid] = used

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> CpuSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu_s(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def _check(stdout: str, expected: dict[str, str]) -> None:
    """Every video's result names the right person (a fast wrong run would prove nothing)."""
    found = {doc["video"]: [p["person"] for p in doc["people"]]
             for doc in map(json.loads, stdout.splitlines())}
    wrong = {v: found.get(v) for v, person in expected.items() if found.get(v) != [person]}
    if wrong:
        raise SystemExit(f"wrong results: {dict(list(wrong.items())[:5])}")


def recognize(args: list[str], env: dict[str, str], expected: dict[str, str]) -> Run:
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as errors:
        started = time.perf_counter()
        with CpuSampler() as sampler:
            code = subprocess.run([str(FACEREEL), "recognize", *args, "--json"], env=env,
                                  stdout=out, stderr=errors, check=False).returncode
        wall = time.perf_counter() - started
        out.seek(0)
        errors.seek(0)
        stdout, stderr = out.read(), errors.read()
    if code:
        raise SystemExit(f"facereel recognize {' '.join(args)} failed:\n{stderr[-3000:]}")
    _check(stdout, expected)
    summary: dict[str, Any] = next((json.loads(line)["summary"] for line in stderr.splitlines()
                    if line.startswith('{"summary"')), {})
    return Run(wall, sampler.cpu_s, summary)


def upload(weed: SeaweedServer, videos: Path) -> None:
    client = make_s3_client(weed.endpoint, "us-east-1", weed.access_key, weed.secret_key)
    provisioned.s3_bucket(client, BUCKET)  # idempotent: a kept SeaweedFS folder has it
    for path in sorted(videos.glob("*.mp4")):
        client.upload_file(str(path), BUCKET, f"videos/{path.name}")


def environment(weed: SeaweedServer, state: Path, workers: int, ray_tmp: Path) -> dict[str, str]:
    return {**os.environ, "FACEREEL_DATA_DIR": str(state), "FACEREEL_WORKERS": str(workers),
           "FACEREEL_GALLERY": str(data_dir() / "encoding"), "RAY_TMPDIR": str(ray_tmp),
           "FACEREEL_INPUT__BACKEND": "s3", "FACEREEL_INPUT__ENDPOINT": weed.endpoint,
           "FACEREEL_INPUT__ACCESS_KEY": weed.access_key,
           "FACEREEL_INPUT__SECRET_KEY": weed.secret_key}


@contextlib.contextmanager
def cluster(ray_tmp: Path, nodes: int, cpus: int) -> Iterator[str]:
    with loopback_cluster(ray_tmp, cpus // nodes, cpus // nodes) if nodes == 2 else \
            _one_node(ray_tmp, cpus) as started:
        yield str(started.address)


@contextlib.contextmanager
def _one_node(ray_tmp: Path, cpus: int) -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    head = Cluster(initialize_head=True, head_node_args={
        "num_cpus": cpus, "object_store_memory": 80 << 20, "node_ip_address": "127.0.0.1",
        "temp_dir": str(ray_tmp), "include_dashboard": False})
    try:
        yield head
    finally:
        head.shutdown()


def measure(rounds: int, workers: int, out: Path, videos: Path) -> dict[str, list[Run]]:
    expected = {video: CLIP_PEOPLE[clip] for video, clip in read_workload().items()}
    state = out / "ray-state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    subprocess.run([str(FACEREEL), "metadata", "load", str(data_dir() / "student_data.json"),
                    "--data-dir", str(state)], check=True, capture_output=True)
    ray_tmp = Path(tempfile.mkdtemp(prefix="fr-bench-", dir="/tmp"))
    (ray_tmp / "ray").mkdir()
    runs: dict[str, list[Run]] = {"local pool": [], "ray, 1 node": [], "ray, 2 nodes": [],
                                  "ray, starting its own": []}
    source = f"s3://{BUCKET}/videos/"
    try:
        with SeaweedServer(out / "ray-seaweed") as weed:
            upload(weed, videos)
            env = environment(weed, state, workers, ray_tmp)
            for number in range(rounds):
                runs["local pool"].append(recognize([source], env, expected))
                for nodes in (1, 2):
                    with cluster(ray_tmp, nodes, workers) as address:
                        runs[f"ray, {nodes} node{'s' if nodes > 1 else ''}"].append(recognize(
                            [source, "--engine", "ray", "--address", address], env, expected))
                runs["ray, starting its own"].append(
                    recognize([source, "--engine", "ray"], env, expected))
                print(f"round {number + 1}: " + ", ".join(
                    f"{name} {r[-1].wall_s:.2f} s / {r[-1].cpu_s:.1f} s CPU"
                    for name, r in runs.items()), flush=True)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    return runs


def report(runs: dict[str, list[Run]], count: int, workers: int) -> dict[str, Any]:
    base = runs["local pool"]
    table: dict[str, Any] = {}
    for name, measured in runs.items():
        wall = [r.wall_s / b.wall_s - 1 for r, b in zip(measured, base, strict=True)]
        cpu = [r.cpu_s / b.cpu_s - 1 for r, b in zip(measured, base, strict=True)]
        median_wall = statistics.median(r.wall_s for r in measured)
        table[name] = {
            "wall_s": [round(r.wall_s, 2) for r in measured],
            "cpu_s": [round(r.cpu_s, 2) for r in measured],
            "median_wall_s": round(median_wall, 2),
            "videos_per_hour_per_core": round(count / median_wall * 3600 / workers),
            "overhead_wall": round(statistics.median(wall), 3),
            "overhead_cpu": round(statistics.median(cpu), 3),
            "per_round_wall": [round(x, 3) for x in wall],
            "nodes": measured[-1].summary.get("nodes", {})}
    return table


def main(argv: list[str] | None = None) -> int:
    import argparse

    for name, value in RAY_ENV.items():  # before anything imports Ray
        os.environ.setdefault(name, value)
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--videos", type=Path, default=REPO_ROOT / "bench" / "out" / "videos")
    known, rest = extra.parse_known_args(argv)
    args = bench_arguments(rest, __doc__ or "")
    if not list(known.videos.glob("*.mp4")):
        raise SystemExit(f"no videos in {known.videos}: run bench/make_videos.py first")
    count = len(list(known.videos.glob("*.mp4")))
    table = report(measure(args.rounds, args.workers, args.out, known.videos), count,
                   args.workers)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ray_engine.json").write_text(json.dumps(table, indent=1))
    for name, row in table.items():
        print(f"{name:24s} median {row['median_wall_s']:6.2f} s  "
              f"{row['videos_per_hour_per_core']:6d} videos/h/core  overhead wall "
              f"{row['overhead_wall']:+.1%} cpu {row['overhead_cpu']:+.1%}  {row['wall_s']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
