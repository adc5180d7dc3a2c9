"""The recognize stage with a million-face gallery, for bench/index.py (run in its own process).

The pipeline's recognize stage embeds the shots the analyze stage took and decides who each
track is (`combine`). Here the 8 real clips are analysed once, their shots kept; each round
then runs embed + combine per clip with the 11-person gallery and with the same 11 people among
1M synthetic faces, in alternating order, and reports the per-round ratio of the two.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil
from tests.support.synthetic_faces import SyntheticFaces, faces_of

from common import CLIP_NAMES, clip_path
from facereel.config import Settings
from facereel.core.faces import FaceModels
from facereel.core.gallery import Gallery
from facereel.core.match import decide
from facereel.core.recognize import MediaAnalyzer, PartialAnalysis, RecognizeOptions, combine
from facereel.core.shots import FaceShot
from facereel.core.tracking import Track

Taken = list[tuple[Track, FaceShot]]


class Shots:
    """A ShotSink that keeps the shots for the stage to embed (as the analyze stage does)."""

    def __init__(self) -> None:
        self.taken: Taken = []

    def add(self, track: Track, shot: FaceShot) -> None:
        self.taken.append((track, shot))

    def flush(self) -> None:
        return None


def analysed(models: FaceModels, options: RecognizeOptions) -> list[tuple[PartialAnalysis, Taken]]:
    analyzer = MediaAnalyzer(models, options)
    clips = []
    for clip in CLIP_NAMES:
        shots = Shots()
        clips.append((analyzer.analyze(clip_path(clip), sink=shots), shots.taken))
    return clips


def run_stage(models: FaceModels, options: RecognizeOptions, gallery: Gallery,
              clips: list[tuple[PartialAnalysis, Taken]]) -> tuple[float, float, list[str]]:
    """(embedding CPU s, deciding CPU s, people found): process CPU time, so the
    runtime's own threads count for one pass over the clips."""
    embed = decide_s = 0.0
    people = []
    for part, taken in clips:
        for track, _ in taken:
            track.embeddings.clear()
        start = time.process_time()
        vectors = models.embed_shots([shot for _, shot in taken])
        for (track, _), vector in zip(taken, vectors, strict=True):
            track.embeddings.append(vector)
        middle = time.process_time()
        result = combine(part.video, [part], gallery, options, None)
        decide_s += time.process_time() - middle
        embed += middle - start
        people.append(",".join(p.person for p in result.people))
    return embed, decide_s, people


def crowded(real: Gallery, crowd: SyntheticFaces) -> Gallery:
    gallery = Gallery(real.embedder, real.dim, list(real.names), real.vectors.copy())
    gallery.extend([f"synthetic_{row // crowd.faces}" for row in range(len(crowd.vectors))],
                   crowd.vectors)
    return gallery


def counting_exact(counter: list[int]) -> Callable[[], None]:
    """Count the searches decide() redoes exactly; answers how to stop counting."""
    original = Gallery.nearest_people

    def counted(self: Gallery, *args: Any, **kwargs: Any) -> Any:
        counter[0] += bool(kwargs.get("exact"))
        return original(self, *args, **kwargs)

    Gallery.nearest_people = counted  # type: ignore[method-assign]
    return lambda: setattr(Gallery, "nearest_people", original)


def decide_latency(gallery: Gallery, crowd: SyntheticFaces, options: RecognizeOptions,
                   stranger_centres: np.ndarray) -> dict[str, Any]:
    """decide() on synthetic tracks of 5 faces: known identities, then strangers."""
    rng = np.random.default_rng(5)
    owners = rng.integers(0, len(crowd.centres), 200)
    tracks = [faces_of(np.repeat(crowd.centres[o:o + 1], 5, axis=0), rng) for o in owners]
    tracks += [faces_of(np.repeat(c[None], 5, axis=0), rng) for c in stranger_centres]
    counter = [0]
    stop = counting_exact(counter)
    walls, cpus, answers = [], [], []
    try:
        for track in tracks:
            start, cpu = time.perf_counter(), time.thread_time()
            answers.append(decide(gallery, list(track), options.policy).person)
            cpus.append(time.thread_time() - cpu)
            walls.append(time.perf_counter() - start)
    finally:
        stop()
    right = sum(a == f"synthetic_{o}" for a, o in zip(answers, owners, strict=False))
    return {"tracks": len(tracks), "p50_ms": round(float(np.percentile(walls, 50)) * 1e3, 2),
            "p99_ms": round(float(np.percentile(walls, 99)) * 1e3, 2),
            "cpu_p50_ms": round(float(np.percentile(cpus, 50)) * 1e3, 2),
            "cpu_p99_ms": round(float(np.percentile(cpus, 99)) * 1e3, 2),
            "known_right": f"{right}/{len(owners)}",
            "strangers_named": sum(a is not None for a in answers[len(owners):]),
            "exact_searches": counter[0]}


def measure_stage(real: Gallery, crowd: SyntheticFaces, rounds: int,
                  stranger_centres: np.ndarray) -> dict[str, Any]:
    settings = Settings()
    models = FaceModels(settings.recognition.face_config()).load()
    options = settings.recognition.recognize_options()
    process = psutil.Process()
    base = process.memory_info().rss
    big = crowded(real, crowd)
    with_gallery = process.memory_info().rss
    start = time.perf_counter()
    index = big.index()
    cold = time.perf_counter() - start
    with_index = process.memory_info().rss
    clips = analysed(models, options)
    galleries = {"11 people": real, f"{len(big)} faces": big}
    costs: dict[str, list[tuple[float, float]]] = {name: [] for name in galleries}
    answers: dict[str, list[str]] = {}
    widened = [0]  # exact searches decide() redid (only the large gallery can need one)
    stop = counting_exact(widened)
    try:
        for number in range(rounds):
            order = list(galleries) if number % 2 == 0 else list(reversed(galleries))
            for name in order:
                embed, decided, answers[name] = run_stage(models, options, galleries[name],
                                                          clips)
                costs[name].append((embed, decided))
    finally:
        stop()
    small, large = (costs[name] for name in galleries)
    ratios = [(b[0] + b[1]) / (a[0] + a[1]) for a, b in zip(small, large, strict=True)]
    per_video = {name: {"embed_ms": round(statistics.median(c[0] for c in runs) / len(clips)
                                          * 1e3, 1),
                        "decide_ms": round(statistics.median(c[1] for c in runs) / len(clips)
                                           * 1e3, 1)}
                 for name, runs in costs.items()}
    return {"clips": len(clips), "rounds": rounds, "per_video_cpu": per_video,
            "ratio_per_round": [round(r, 3) for r in ratios],
            "median_ratio": round(statistics.median(ratios), 3),
            "same_people": answers["11 people"] == answers[f"{len(big)} faces"],
            "people": {name: dict(zip(CLIP_NAMES, found, strict=True))
                       for name, found in answers.items()},
            "index": index.kind,
            "exact_searches_per_pass": widened[0] / rounds,
            "index_build_s": round(cold, 1),
            "gallery_rss_mib": round((with_gallery - base) / 2**20),
            "index_rss_mib": round((with_index - with_gallery) / 2**20),
            "decide": decide_latency(big, crowd, options, stranger_centres)}
