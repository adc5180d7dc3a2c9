"""The face index at a million faces: libraries compared, and the recognize stage's cost.

1. 1M synthetic 128-d faces (100k identities x 10, spread like dlib-resnet's vectors around the
   real gallery's mean: tests/support/synthetic_faces.py), the measured distance distributions
   printed beside the real 11 people's; exact top-10 of 1000 new faces of known identities and
   200 of unknown ones (strangers) as the truth.
2. Each library in a process of its own (clean memory figures): build time (both cores), RSS
   added, then single-query latency on one thread (p50/p99 wall and thread CPU), recall@1 and
   @10 against exact, at two or three search settings; each round also times exact search on
   the same queries in the same process, so the per-round ratio cancels the machine's noise.
3. The recognize stage (embed a clip's shots, decide who its tracks are) on the 8 real clips
   with the 11-person gallery and with those 11 among the 1M faces (index built first, as a
   warm host has it), alternated for --rounds rounds; the ratio is per round, the median quoted.

    pip install -e '.[dev,bench]'    # usearch and voyager are only compared, never used
    python bench/index.py [--faces 1000000] [--rounds 3] [--libraries faiss-ivf,usearch]
"""

from __future__ import annotations

import os

from common import REPO_ROOT, data_dir  # first: it puts the repository (tests/) on sys.path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core for every query figure
os.environ.setdefault("OMP_NUM_THREADS", "2")  # builds use both (FAISS sets 1 for queries)

import argparse
import importlib
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from tests.support.synthetic_faces import SyntheticFaces, faces_of, synthetic_faces

from facereel.core.gallery import Gallery
from facereel.core.gallery_io import read_gallery_file
from facereel.core.index import ExactIndex

Search = Callable[[np.ndarray, int], np.ndarray]  # one query, k -> ids
LIBRARIES = ("faiss-ivf", "faiss-hnsw", "usearch", "voyager")
KNOWN, STRANGERS = 1000, 200


def real_gallery() -> Gallery:
    return read_gallery_file(data_dir() / "encoding", "dlib-resnet", 128)


def faces(count: int) -> SyntheticFaces:
    """The synthetic crowd, the same in every process (seeded), around the real people."""
    return synthetic_faces(count // 10, 10, seed=0, mean=real_gallery().vectors.mean(axis=0))


def queries(crowd: SyntheticFaces) -> tuple[np.ndarray, np.ndarray]:
    """New faces of known identities, then faces of identities nobody enrolled; owners."""
    rng = np.random.default_rng(1)
    owners = rng.integers(0, len(crowd.centres), KNOWN)
    strangers = synthetic_faces(STRANGERS, 1, seed=2, mean=crowd.centres.mean(axis=0))
    known = faces_of(crowd.centres[owners], rng)
    return np.vstack([known, faces_of(strangers.centres, rng)]), owners


def percentiles(values: np.ndarray, points: tuple[float, ...]) -> dict[str, float]:
    return {f"p{p:g}": round(float(np.percentile(values, p)), 3) for p in points}


def calibration(crowd: SyntheticFaces, exact: ExactIndex, asked: np.ndarray,
                owners: np.ndarray) -> dict[str, Any]:
    """The distances the synthetic faces show, beside the real gallery's."""
    real = real_gallery().vectors
    pairs = np.linalg.norm(real[:, None] - real[None], axis=2)[np.triu_indices(len(real), 1)]
    people = min(5000, len(crowd.centres))
    sample = crowd.vectors[: people * crowd.faces].reshape(people, crowd.faces, -1)
    within = np.linalg.norm(sample[:, :, None] - sample[:, None], axis=3)
    same = within[:, *np.triu_indices(crowd.faces, 1)].ravel()
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, len(crowd.vectors), (2, 200_000))
    apart = crowd.identity(a) != crowd.identity(b)
    different = np.linalg.norm(crowd.vectors[a[apart]] - crowd.vectors[b[apart]], axis=1)
    found = exact.search(asked[:KNOWN], 20)
    own = crowd.identity(found.ids) == owners[:, None]
    other = np.where(own, np.inf, found.distances).min(axis=1)
    return {
        "real_11_people": {"norms": [round(float(x), 2) for x in np.linalg.norm(real, axis=1)
                                     [[0, -1]]], **percentiles(pairs, (0, 50, 100))},
        "synthetic_norms": percentiles(np.linalg.norm(crowd.vectors[:10000], axis=1), (1, 99)),
        "same_identity": percentiles(same, (0, 1, 50, 99, 100)),
        "different_identities": percentiles(different, (0, 0.1, 1, 50)),
        "query_to_own_nearest": percentiles(np.where(own, found.distances, np.inf).min(axis=1),
                                            (50, 99, 100)),
        "query_to_other_nearest": percentiles(other, (0, 1, 50)),
        "stranger_to_nearest": percentiles(exact.search(asked[KNOWN:], 1).distances[:, 0],
                                           (0, 1, 50)),
    }


def latency(search: Search, asked: np.ndarray, k: int = 32) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for query in asked:
        wall, cpu = time.perf_counter(), time.thread_time()
        search(query, k)
        cpus.append(time.thread_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return walls, cpus


def recall(search: Search, asked: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    top = np.array([search(query, 10)[:10] for query in asked])
    at_1 = top[:, 0] == truth[:, 0]
    at_10 = [len(set(t) & set(r)) / 10 for t, r in zip(top, truth, strict=True)]
    return {"recall@1": round(float(at_1[:KNOWN].mean()), 4),
            "recall@10": round(float(np.mean(at_10[:KNOWN])), 4),
            "stranger_recall@1": round(float(at_1[KNOWN:].mean()), 4)}


def build(library: str, vectors: np.ndarray) -> dict[str, Search]:
    """The library's index of `vectors`, and a search function per search setting."""
    if library == "faiss-ivf":
        from facereel.core.index import FaissIvfIndex

        ivf = FaissIvfIndex.build(vectors, threads=2)

        def ivf_at(nprobe: int) -> Search:
            def search(query: np.ndarray, k: int) -> np.ndarray:
                ivf.nprobe = nprobe
                return np.asarray(ivf.search(query[None], k).ids[0])
            return search
        return {f"nprobe={n}": ivf_at(n) for n in (16, 32, 64)}
    return OTHERS[library](vectors)


def faiss_hnsw(vectors: np.ndarray) -> dict[str, Search]:
    import faiss

    index = faiss.IndexHNSWFlat(vectors.shape[1], 32)
    index.hnsw.efConstruction = 40
    index.add(vectors)
    faiss.omp_set_num_threads(1)

    def at(ef: int) -> Search:
        def search(query: np.ndarray, k: int) -> np.ndarray:
            index.hnsw.efSearch = max(ef, k)
            return np.asarray(index.search(query[None], k)[1][0])
        return search
    return {"M=32 ef=64": at(64), "M=32 ef=256": at(256)}


def usearch_hnsw(vectors: np.ndarray) -> dict[str, Search]:
    # imported untyped: the `bench` extra may be absent where mypy runs
    usearch: Any = importlib.import_module("usearch.index")
    index = usearch.Index(ndim=vectors.shape[1], metric="l2sq", dtype="f32", connectivity=16,
                          expansion_add=64)
    index.add(np.arange(len(vectors)), vectors, threads=2)

    def at(ef: int) -> Search:
        def search(query: np.ndarray, k: int) -> np.ndarray:
            index.expansion_search = ef
            return np.asarray(index.search(query, k, threads=1).keys)
        return search
    return {"M=16 ef=64": at(64), "M=16 ef=256": at(256)}


def voyager_hnsw(vectors: np.ndarray) -> dict[str, Search]:
    voyager: Any = importlib.import_module("voyager")
    index = voyager.Index(voyager.Space.Euclidean, num_dimensions=vectors.shape[1], M=16,
                          ef_construction=64, max_elements=len(vectors))
    index.add_items(vectors, np.arange(len(vectors)), num_threads=2)

    def at(ef: int) -> Search:
        def search(query: np.ndarray, k: int) -> np.ndarray:
            return np.asarray(index.query(query, k, num_threads=1, query_ef=max(ef, k))[0])
        return search
    return {"M=16 ef=64": at(64), "M=16 ef=256": at(256)}


OTHERS: dict[str, Callable[[np.ndarray], dict[str, Search]]] = {
    "faiss-hnsw": faiss_hnsw, "usearch": usearch_hnsw, "voyager": voyager_hnsw}


def rss_mib() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def measure_library(library: str, count: int, rounds: int, out: Path) -> dict[str, Any]:
    """One library, in this process: build, memory, then latency rounds against exact."""
    crowd = faces(count)
    truth = np.load(out / "index-truth.npz")
    asked, top = truth["queries"], truth["top"]
    exact = ExactIndex.of(crowd.vectors)
    before, wall, cpu = rss_mib(), time.perf_counter(), time.process_time()
    settings = build(library, crowd.vectors)
    report: dict[str, Any] = {
        "build_s": round(time.perf_counter() - wall, 1),
        "build_cpu_s": round(time.process_time() - cpu, 1),
        "rss_added_mib": round(rss_mib() - before), "settings": {}}
    for name, search in settings.items():
        rows = []
        for _ in range(rounds):
            walls, cpus = latency(search, asked)
            exact_walls, _ = latency(exact_search(exact), asked[:30])
            rows.append((np.percentile(walls, 50), np.percentile(walls, 99),
                         np.percentile(cpus, 50), np.percentile(cpus, 99),
                         np.median(exact_walls) / np.percentile(walls, 50)))
        p50, p99, cpu50, cpu99, speedup = (statistics.median(col) for col in zip(*rows,
                                                                                  strict=True))
        report["settings"][name] = {
            "p50_ms": round(p50 * 1e3, 3), "p99_ms": round(p99 * 1e3, 3),
            "cpu_p50_ms": round(cpu50 * 1e3, 3), "cpu_p99_ms": round(cpu99 * 1e3, 3),
            "speedup_vs_exact": round(speedup, 1), **recall(search, asked, top)}
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return report


def exact_search(exact: ExactIndex) -> Search:
    return lambda query, k: np.asarray(exact.search(query[None], k).ids[0])


def exact_latencies(crowd: SyntheticFaces, asked: np.ndarray) -> dict[str, float]:
    """Exact search's single-query p50 at several sizes: where approximate search pays."""
    found = {}
    for size in (10_000, 50_000, 200_000, len(crowd.vectors)):
        walls, _ = latency(exact_search(ExactIndex.of(crowd.vectors[:size])), asked[:50])
        found[f"{size}"] = round(float(np.median(walls)) * 1e3, 2)
    return found


def child(command: list[str], out: Path) -> dict[str, Any]:
    ran = subprocess.run([sys.executable, __file__, *command, "--out", str(out)],
                         capture_output=True, text=True, check=False)
    if ran.returncode:
        raise SystemExit(f"{command} failed:\n{ran.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(ran.stdout.splitlines()[-1])
    return result


def measure(count: int, rounds: int, libraries: list[str], out: Path) -> dict[str, Any]:
    crowd = faces(count)
    asked, owners = queries(crowd)
    exact = ExactIndex.of(crowd.vectors)
    start = time.perf_counter()
    top = exact.search(asked, 10).ids
    np.savez(out / "index-truth.npz", queries=asked, top=top)
    report: dict[str, Any] = {
        "faces": len(crowd.vectors), "queries": {"known": KNOWN, "strangers": STRANGERS},
        "exact_batch_ms_per_query": round((time.perf_counter() - start) / len(asked) * 1e3, 2),
        "calibration": calibration(crowd, exact, asked, owners),
        "exact_p50_ms_by_size": exact_latencies(crowd, asked)}
    print(json.dumps(report, indent=1), flush=True)
    del crowd, exact
    report["libraries"] = {}
    for library in libraries:
        report["libraries"][library] = child(["--child", library, "--faces", str(count),
                                              "--rounds", str(rounds)], out)
        print(library, json.dumps(report["libraries"][library]), flush=True)
    report["recognize_stage"] = child(["--child", "stage", "--faces", str(count),
                                       "--rounds", str(rounds)], out)
    return report


def table(report: dict[str, Any]) -> str:
    rows = ["| library | search setting | build s (2 cores) | RSS added MiB | p50 ms | p99 ms | "
            "CPU p50 ms | recall@1 | recall@10 | strangers recall@1 | x exact |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for library, found in report["libraries"].items():
        for name, s in found["settings"].items():
            rows.append(f"| {library} | {name} | {found['build_s']} | {found['rss_added_mib']} | "
                        f"{s['p50_ms']} | {s['p99_ms']} | {s['cpu_p50_ms']} | {s['recall@1']} | "
                        f"{s['recall@10']} | {s['stranger_recall@1']} | "
                        f"{s['speedup_vs_exact']} |")
    stage = report["recognize_stage"]
    rows.append(f"\nrecognize stage, 1M-face gallery / 11-person gallery (CPU per video, median "
                f"of per-round ratios): {stage['median_ratio']}x {stage['ratio_per_round']}")
    rows.append(f"per video: {json.dumps(stage['per_video_cpu'])}; decide on synthetic "
                f"tracks: {json.dumps(stage['decide'])}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.child == "stage":
        from index_stage import measure_stage

        strangers = synthetic_faces(100, 1, seed=9, mean=real_gallery().vectors.mean(axis=0))
        found = measure_stage(real_gallery(), faces(args.faces), args.rounds, strangers.centres)
        print(json.dumps(found))
        return 0
    if args.child:
        print(json.dumps(measure_library(args.child, args.faces, args.rounds, args.out)))
        return 0
    report = measure(args.faces, args.rounds, args.libraries.split(","), args.out)
    (args.out / "index.json").write_text(json.dumps(report, indent=1))
    print(table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
