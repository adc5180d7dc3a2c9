"""Calibrate what ends a track, on the real clips: cuts (scene changes) and look jumps.

Issue 9: three clips of three people, scaled to one size and put one after the other, came out
as two people, because the first face was followed across the cut. Analysis now ends tracks at
a cut (`appearance.scene_change` between consecutive samples above `CUT_SCORE`) and when a
face's look jumps (`appearance.look_distance` above `LOOK_JUMP`); identification splits a
track whose shots' embeddings disagree. This measures, on the 8 clips decoded as they are and
scaled to 640x360 one after another:

- scene changes between two frames of one clip at most 0.55 s apart (consecutive samples of
  one shot: camera motion, people moving) and between frames of two different clips (a cut);
- looks: a face against the same face up to 0.55 s later, found by a full detection or, as
  a light sample finds it, around where it was; against the same face 0.55-1.55 s later (back
  after a gap); and against another clip's face, the template scaled to that face's size (as
  if the two were framed identically);
- embeddings: two shots of one clip, and of two clips (where identification splits a track).

    python bench/cuts.py [--out bench/out]     (about a minute; writes out/cuts.json)
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common import CLIP_NAMES, REPO_ROOT, clip_path
from facereel.core.analysis import CUT_SCORE, FOLLOW_MARGIN, LOOK_JUMP, roi_around
from facereel.core.appearance import Look, Scene, look_at, look_distance, scene_change, scene_of
from facereel.core.faces import FaceConfig, FaceModels
from facereel.core.match import MatchPolicy
from facereel.core.media import VideoPicture, VideoSource
from facereel.core.types import Box, FloatArray, ImageArray

# isort: split
from tests.support.media_factory import read_frames, timeline  # on the path common.py sets

NEAR_S = 0.55  # consecutive samples are 0.5 s apart
GAP_S = 1.55  # a face back after a gap is compared with its look before it
SAMPLE_EVERY = 3  # frames kept for the across-clip comparisons


@dataclass
class Frame:
    clip: str
    time_s: float
    scene: Scene
    box: Box | None  # the clip's person (the largest confident face)
    look: Look | None
    gray: ImageArray | None  # kept for every SAMPLE_EVERY-th frame with a face
    scale: float


@dataclass
class Measures:
    scene_within: list[tuple[str, float]]
    look_within: list[tuple[str, float]]
    look_light: list[tuple[str, float]]
    look_gap: list[tuple[str, float]]
    embeddings: dict[str, list[FloatArray]]


def _frame(models: FaceModels, picture: VideoPicture, clip: str, index: int) -> Frame:
    scale = models.detection_scale(picture.width, picture.height)
    gray = picture.gray(scale)
    faces = [d for d in models.detect(picture) if d.score >= 0]
    box = max(faces, key=lambda d: d.box[2] - d.box[0]).box if faces else None
    look = look_at(gray, scale, box) if box else None
    keep = box is not None and index % SAMPLE_EVERY == 0
    return Frame(clip, picture.time_s, scene_of(picture), box, look, gray if keep else None,
                 scale)


def _compare(models: FaceModels, picture: VideoPicture, now: Frame, earlier: list[Frame],
             out: Measures) -> None:
    """`now` against the frames before it in the same clip."""
    for before in earlier:
        gap = now.time_s - before.time_s
        if gap <= NEAR_S:
            out.scene_within.append((now.clip, scene_change(before.scene, now.scene)))
        if before.look is None or before.box is None or now.box is None:
            continue
        gray = picture.gray(now.scale)
        distance = look_distance(before.look, gray, now.scale, now.box)
        (out.look_within if gap <= NEAR_S else out.look_gap).append((now.clip, distance))
        if NEAR_S - 0.1 <= gap <= NEAR_S:  # a light sample: search around the earlier box
            found = models.detect(picture, roi_around(before.box, FOLLOW_MARGIN),
                                  before.box[2] - before.box[0])
            for det in found:
                distance = look_distance(before.look, gray, now.scale, det.box)
                out.look_light.append((now.clip, distance))


def _walk(models: FaceModels, video: Path, clip_at: Callable[[float], str], out: Measures,
          embed: bool) -> list[Frame]:
    """Decode `video` as analysis does and measure each frame against the ones before it;
    returns every frame (with its grey image kept, and embedded with `embed`, for every
    SAMPLE_EVERY-th frame with a face)."""
    recent: list[Frame] = []
    frames: list[Frame] = []
    with VideoSource(video) as source:
        for index, picture in enumerate(source.pictures("nonref")):
            clip = clip_at(picture.time_s)
            frame = _frame(models, picture, clip, index)
            recent = [f for f in recent if f.clip == clip and frame.time_s - f.time_s <= GAP_S]
            _compare(models, picture, frame, recent, out)
            recent.append(frame)
            frames.append(frame)
            if embed and frame.gray is not None and frame.box is not None:
                vector = models.embed(picture.rgb(), [frame.box])[0]
                out.embeddings.setdefault(clip, []).append(vector)
    return frames


def _named(clip: str) -> Callable[[float], str]:
    return lambda _time: clip


def _concatenation(folder: Path) -> tuple[Path, list[tuple[str, float, float]]]:
    """The 8 clips at their own length, scaled to 640x360, one after the other."""
    video = folder / "cuts-all8.mp4"
    lengths = []
    for clip in CLIP_NAMES:
        times = [t for t, _ in read_frames(clip_path(clip))]
        lengths.append(times[-1] + (times[1] - times[0]))
    spans = timeline(video, [(clip_path(c), s) for c, s in zip(CLIP_NAMES, lengths, strict=True)])
    return video, [(c, a, b) for c, (a, b) in zip(CLIP_NAMES, spans, strict=True)]


def measure(folder: Path) -> tuple[Measures, list[Frame]]:
    """Within-clip measures on the clips as they are and scaled; the frames of the scaled
    concatenation (one size for all, as issue 9's video) for comparisons across clips."""
    models = FaceModels(FaceConfig()).load()
    out = Measures([], [], [], [], {})
    for clip in CLIP_NAMES:
        _walk(models, clip_path(clip), _named(clip), out, embed=True)
    video, spans = _concatenation(folder)

    def clip_at(time_s: float) -> str:  # frame times are stored to the millisecond
        return next(c for c, _, end in spans if time_s <= end + 0.01)

    return out, _walk(models, video, clip_at, out, embed=False)


def _across_scenes(frames: list[Frame]) -> list[tuple[str, float]]:
    return [(f"{a.clip}/{b.clip}", scene_change(a.scene, b.scene))
            for a, b in itertools.combinations(frames, 2) if a.clip != b.clip]


def _across_looks(frames: list[Frame]) -> list[tuple[str, float]]:
    """Each face's look against another clip's face, rescaled to that face's size."""
    pairs = []
    for a, b in itertools.permutations(frames, 2):
        if a.clip == b.clip or a.look is None or a.gray is None or b.box is None or b.gray is None:
            continue
        as_framed = Look(a.look.template, look_at(b.gray, b.scale, b.box).scale)
        pairs.append((f"{a.clip}/{b.clip}", look_distance(as_framed, b.gray, b.scale, b.box)))
    return pairs


def _embedding_pairs(vectors: dict[str, list[FloatArray]]) -> tuple[list[tuple[str, float]],
                                                                     list[tuple[str, float]]]:
    within = [(clip, float(np.linalg.norm(a - b))) for clip, vs in vectors.items()
              for a, b in itertools.combinations(vs, 2)]
    across = [(f"{x}/{y}", float(np.linalg.norm(a - b)))
              for x, y in itertools.combinations(vectors, 2)
              for a in vectors[x] for b in vectors[y]]
    return within, across


def summary(values: list[tuple[str, float]], worst: str) -> dict[str, Any]:
    """Count, percentiles, and the clips (or clip pairs) at the `worst` end."""
    array = np.array([v for _, v in values])
    by_key: dict[str, float] = {}
    pick = max if worst == "high" else min
    for key, value in values:
        by_key[key] = pick(by_key.get(key, value), value)
    ranked = sorted(by_key.items(), key=lambda kv: kv[1], reverse=worst == "high")
    return {
        "n": len(values),
        "percentiles": {str(p): round(float(np.percentile(array, p)), 3)
                        for p in (0, 1, 5, 50, 95, 99, 100)},
        f"{'highest' if worst == 'high' else 'lowest'}": {k: round(v, 3) for k, v in ranked[:5]},
    }


def _share_above(values: list[tuple[str, float]], threshold: float) -> float:
    return round(float(np.mean([v > threshold for _, v in values])), 4)


def report(out: Measures, scaled: list[Frame]) -> dict[str, Any]:
    scenes_across = _across_scenes(scaled)
    looks_across = _across_looks(scaled)
    embed_within, embed_across = _embedding_pairs(out.embeddings)
    split = MatchPolicy().threshold
    return {
        "cut_score": CUT_SCORE, "look_jump": LOOK_JUMP, "embedding_split": split,
        "scene_within_clip": summary(out.scene_within, "high"),
        "scene_across_clips": summary(scenes_across, "low"),
        "cuts_missed_share": 1 - _share_above(scenes_across, CUT_SCORE),
        "false_cuts_share": _share_above(out.scene_within, CUT_SCORE),
        "look_same_face_full": summary(out.look_within, "high"),
        "look_same_face_light": summary(out.look_light, "high"),
        "look_same_face_after_gap": summary(out.look_gap, "high"),
        "look_other_face": summary(looks_across, "low"),
        "jumps_found_share": _share_above(looks_across, LOOK_JUMP),
        "false_jumps_share": _share_above(out.look_within + out.look_light, LOOK_JUMP),
        "embedding_same_clip": summary(embed_within, "high"),
        "embedding_other_clip": summary(embed_across, "low"),
        "split_found_share": _share_above(embed_across, split),
        "false_split_share": _share_above(embed_within, split),
    }


def _lines(doc: dict[str, Any]) -> Iterator[str]:
    for key, value in doc.items():
        if isinstance(value, dict):
            yield f"{key:26s} n={value['n']:<6d} {value['percentiles']}"
            label = "highest" if "highest" in value else "lowest"
            yield f"{'':26s} {label}: {value[label]}"
        else:
            yield f"{key:26s} {value}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    doc = report(*measure(args.out))
    (args.out / "cuts.json").write_text(json.dumps(doc, indent=1) + "\n")
    for line in _lines(doc):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
