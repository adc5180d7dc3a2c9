"""Calibrate open-set matching: the distances true matches and strangers reach.

Runs the recognizer's analysis (default settings: the default detector at its scale, adaptive
sampling, shots, embeddings) over the 8 real clips and the 100 re-encodings, keeps every track
that counts as a face, and reports on the `encoding` gallery:
- true matches: the median distance of each video's person's tracks to that person (the worst
  one, and its runner-up gap);
- strangers: other faces' nearest distance, and, with the true person removed from the gallery
  (each video asked again without them), the nearest anyone else comes;
- the answers of a policy (threshold, clear slack, clear margin): right on how many videos,
  and how many leave-one-out videos wrongly name someone.

    python bench/calibrate.py [--videos bench/out/videos] [--threshold 0.6] [--slack 0.04]
        [--sampling adaptive|first|keyframes]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import CLIP_NAMES, CLIP_PERSON, REPO_ROOT, clip_path, data_dir, read_workload
from facereel.config import Settings
from facereel.core.faces import FaceModels
from facereel.core.gallery import Gallery
from facereel.core.gallery_io import read_gallery_file
from facereel.core.match import MatchPolicy, decide
from facereel.core.recognize import MediaAnalyzer
from facereel.core.tracking import Track


@dataclass
class Seen:
    video: str
    person: str
    tracks: list[Track]


def confident_tracks(analyzer: MediaAnalyzer, path: Path) -> list[Track]:
    part = analyzer.analyze(path)
    presence = analyzer.models.presence_score
    return [t for t in part.analysis.tracks
            if t.embeddings and max(o.score for o in t.observations) >= presence]


def medians(gallery: Gallery, track: Track) -> dict[str, float]:
    distances = gallery.person_distances(np.asarray(track.embeddings, dtype=np.float32))
    return {p: float(v) for p, v in zip(gallery.people, np.median(distances, axis=0),
                                        strict=True)}


def answer(gallery: Gallery, seen: Seen, policy: MatchPolicy) -> list[str]:
    """Names the policy gives to the video's tracks (the most-seen first), unknowns left out."""
    ranked = sorted(seen.tracks, key=lambda t: -len(t.observations))
    names = [decide(gallery, t.embeddings, policy).person for t in ranked]
    return [n for n in names if n is not None]


def report(gallery: Gallery, seen: list[Seen], policy: MatchPolicy) -> dict[str, object]:
    true, gaps, others, alone = [], [], [], []
    right, wrong_names, loo_named = 0, [], []
    for item in seen:
        for track in item.tracks:
            distances = medians(gallery, track)
            nearest = min(distances, key=lambda p: distances[p])
            if nearest == item.person:
                true.append((distances[nearest], item.video))
                rest = sorted(v for p, v in distances.items() if p != nearest)
                gaps.append((rest[0] - distances[nearest], item.video))
                del distances[item.person]
                alone.append((min(distances.values()), item.video))
            else:
                others.append((distances[nearest], item.video, nearest))
        names = answer(gallery, item, policy)
        right += bool(names) and names[0] == item.person
        wrong_names += [(item.video, n) for n in names if n != item.person]
        loo = answer(gallery.without(item.person), item, policy)
        if loo:
            loo_named.append((item.video, loo))
    return {"videos": len(seen), "right": right, "other_names": wrong_names,
            "worst_true": max(true), "smallest_gap": min(gaps),
            "nearest_stranger_face": min(others, default=None),
            "nearest_without_true_person": min(alone),
            "leave_one_out_named": loo_named}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--videos", type=Path, default=REPO_ROOT / "bench" / "out" / "videos")
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--slack", type=float, default=0.04)
    parser.add_argument("--margin", type=float, default=0.1)
    parser.add_argument("--detector", default=None)
    parser.add_argument("--sampling", default="adaptive")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out")
    args = parser.parse_args()
    settings = Settings(sampling=args.sampling,
                        **({"detector": args.detector} if args.detector else {}))
    models = FaceModels(settings.recognition.face_config()).load()
    analyzer = MediaAnalyzer(models, settings.recognition.recognize_options())
    gallery = read_gallery_file(data_dir() / "encoding", "dlib-resnet", 128)
    inputs = [(c, clip_path(c), CLIP_PERSON[c]) for c in CLIP_NAMES]
    inputs += [(v, args.videos / v, CLIP_PERSON[c]) for v, c in read_workload().items()]
    seen = [Seen(name, person, confident_tracks(analyzer, path))
            for name, path, person in inputs]
    policy = MatchPolicy(args.threshold, args.slack, args.margin)
    print(f"detector {settings.recognition.detector}, sampling {args.sampling}; policy {policy}")
    dump = {s.video: {"person": s.person,
                      "tracks": [{"observations": len(t.observations),
                                  "embeddings": len(t.embeddings),
                                  "medians": medians(gallery, t)} for t in s.tracks]}
            for s in seen}
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"calibrate-{settings.recognition.detector}-{args.sampling}.json"
    target.write_text(json.dumps(dump, indent=1))
    for label, group in (("8 clips", seen[:8]), ("100 re-encodings", seen[8:]), ("all", seen)):
        print(label, json.dumps(report(gallery, group, policy), default=str))


if __name__ == "__main__":
    main()
