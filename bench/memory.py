"""What the face memory costs and how fast it answers (`python bench/memory.py`).

1. The real clips through the pipeline's stages in this process (embedded backends): the
   `remember` stage's time and message size per video, and what recognize spends building
   the record; then `search --person` latency for each enrolled person over the stored
   clips, without an index snapshot (every record read) and with one.
2. A synthetic memory of `--videos` videos (4 tracks x 3 shots each, random 128-d unit
   vectors): remember rate into SQLite, a full index build, and search latency through the
   snapshot with a tail of 100 videos remembered after it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import CLIP_NAMES, data_dir
from facereel.config import Settings
from facereel.core.gallery_io import read_gallery_file
from facereel.memory.indexer import update_index
from facereel.memory.search import Searcher
from facereel.pipeline.context import StageContext
from facereel.pipeline.definition import run_stage
from facereel.pipeline.stages import Delivery
from facereel.pipeline.wiring import build_ports
from facereel.ports.memory import Shot, TrackMemory, VideoMemory
from facereel.ports.memory.sqlite import SqliteMemory
from facereel.ports.objectstore.local import LocalObjectStore


def _ms(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2)}


def real_clips(work: Path) -> dict[str, Any]:
    data = data_dir()
    settings = Settings(data_dir=work / "clips")
    gallery = read_gallery_file(data / "encoding", settings.recognition.embedder, 128)
    gallery.save(settings.storage.gallery_path)
    ports = build_ports(settings.storage, settings.recognition.embedder)
    context = StageContext(ports, settings.recognition, settings.pipeline, 0.0)
    remember_s, sizes, recognize_s = [], [], []
    for clip in CLIP_NAMES:
        info = ports.input.put_file(f"{clip}.mp4", data / "videos" / f"{clip}.mp4")
        (stage, body), = run_stage("split", Delivery({"key": info.key, "etag": info.etag}),
                                   context)
        started = time.perf_counter()
        sent = run_stage(stage, Delivery(body), context)
        recognize_s.append(time.perf_counter() - started)
        memory = dict(sent)["remember"]
        sizes.append(len(json.dumps(memory)))
        run_stage("publish", Delivery(dict(sent)["publish"]), context)
        started = time.perf_counter()
        run_stage("remember", Delivery(memory), context)
        remember_s.append(time.perf_counter() - started)
    searcher = Searcher(ports.memory, ports.stage1, "dlib-resnet", 128)
    scan = _searches(searcher, gallery.vectors, gallery.names, rounds=20)
    update_index(ports.memory, ports.stage1, "dlib-resnet", 128)
    indexed = _searches(searcher, gallery.vectors, gallery.names, rounds=20)
    return {"videos": len(CLIP_NAMES), "remember_stage": _ms(remember_s),
            "recognize_stage_with_memory": _ms(recognize_s),
            "remember_message_bytes": {"median": statistics.median(sizes), "max": max(sizes)},
            "search_without_snapshot": scan, "search_with_snapshot": indexed}


def _searches(searcher: Searcher, vectors: np.ndarray, names: list[str],
              rounds: int) -> dict[str, float]:
    seconds = []
    for _ in range(rounds):
        for person in dict.fromkeys(names):
            rows = np.asarray([n == person for n in names])
            started = time.perf_counter()
            searcher.search(vectors[rows], 0.6)
            seconds.append(time.perf_counter() - started)
    return _ms(seconds)


def _video(n: int, rng: np.random.Generator) -> VideoMemory:
    tracks = []
    for t in range(4):
        vectors = rng.normal(size=(3, 128)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        tracks.append(TrackMemory(str(t), [(0, 2000)], f"v{n}/e/part-0000.zip/track{t:03d}-"
                                  "shot00.jpg", [Shot(s * 1000, f"v{n}/e/part-0000.zip/track"
                                                 f"{t:03d}-shot{s:02d}.jpg") for s in range(3)],
                                  vectors))
    return VideoMemory(f"videos/{n:07d}.mp4", f"etag{n}", "retinaface", "dlib-5point",
                       "dlib-resnet", tracks, written=time.time())


def synthetic(work: Path, videos: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    memory = SqliteMemory(work / "synthetic.db")
    objects = LocalObjectStore(work / "stage-1")
    started = time.perf_counter()
    for n in range(videos):
        memory.remember(_video(n, rng))
    remember_s = time.perf_counter() - started
    build = update_index(memory, objects, "dlib-resnet", 128)
    searcher = Searcher(memory, objects, "dlib-resnet", 128)
    queries = rng.normal(size=(50, 128)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    started = time.perf_counter()
    searcher.snapshot()
    load_s = time.perf_counter() - started
    report: dict[str, Any] = {
        "videos": videos, "vectors": build.vectors,
        "remember_per_video_ms": round(remember_s / videos * 1000, 3),
        "index_build_s": build.seconds, "snapshot_load_s": round(load_s, 3)}
    for tail in (0, 100):  # videos remembered after the snapshot: a search reads them too
        for n in range(videos, videos + tail):
            memory.remember(_video(n, rng))
        seconds = []
        for query in queries:
            start = time.perf_counter()
            searcher.search(query[None, :], 0.6)
            seconds.append(time.perf_counter() - start)
        report[f"search_with_a_tail_of_{tail}"] = _ms(seconds)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facereel-memory-bench-") as folder:
        report = {"real_clips": real_clips(Path(folder)),
                  "synthetic": synthetic(Path(folder), args.videos)}
    text = json.dumps(report, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
