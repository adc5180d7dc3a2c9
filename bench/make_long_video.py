"""Build a long test video: face-free filler alternating with short appearances of each person.

The coursework clips are 1-2 s long, which says nothing about how a pipeline copes with
minutes of footage where faces are rare. This builds a 1280x720, 30 fps H.264 video (default
180 s) in which synthetic, slowly drifting textures (4-9 s each, verified face-free with dlib
HOG at full resolution) alternate with 1-2 s segments cut from the real clips; every one of
the 8 people appears at least twice. truth.json lists each appearance with exact times.

    python bench/make_long_video.py --out bench/out/long [--seconds 180] [--seed 7]
        [--verify-step 10] [--workers 2] [--verify-only] [--force]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import av
import dlib
import numpy as np

from common import CLIP_PERSON, check_clip_people, clip_path, encode_frames

WIDTH, HEIGHT, FPS = 1280, 720, 30
FILLER_S = (4.0, 9.0)
APPEARANCE_S = (1.0, 2.0)
MIN_APPEARANCES_EACH = 2
TEXTURE_W, TEXTURE_H = 320, 180  # filler is drawn small and upscaled: smooth and cheap
GRAIN_SIGMA = 5.0  # luma grain per full-resolution pixel

RgbFrame = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Segment:
    """A run of output frames: filler (person None) or an appearance cut from a clip."""

    frames: int
    person: str | None = None
    clip: str | None = None
    source_start_s: float = 0.0
    texture_seed: int = 0


def _clip_duration(clip: str) -> float:
    """Length of a clip's video stream in seconds (from the decoded frame times)."""
    with av.open(str(clip_path(clip))) as container:
        times = [frame.time for frame in container.decode(video=0)]
    return times[-1] - times[0]


def _appearance(rng: random.Random, clip: str, clip_seconds: float) -> Segment:
    """1-2 s (at most the clip's length) from a random point of the clip."""
    longest = min(APPEARANCE_S[1], clip_seconds)
    seconds = rng.uniform(min(APPEARANCE_S[0], longest), longest)
    frames = max(1, round(seconds * FPS))
    start = rng.uniform(0.0, max(0.0, clip_seconds - frames / FPS))
    return Segment(frames, CLIP_PERSON[clip], clip, round(start, 3))


def _filler(rng: random.Random, seconds: float | None = None) -> Segment:
    """A face-free stretch of 4-9 s (or exactly `seconds`), with its own texture."""
    length = rng.uniform(*FILLER_S) if seconds is None else seconds
    return Segment(round(length * FPS), texture_seed=rng.randrange(2**31))


def plan_timeline(rng: random.Random, seconds: float) -> list[Segment]:
    """Filler, appearance, filler, ...; each person twice (shuffled), then random extras.

    The video ends on filler that pads it to exactly `seconds` (4 s or more, so it may be
    longer than 9 s).
    """
    durations = {clip: _clip_duration(clip) for clip in CLIP_PERSON}
    required = list(CLIP_PERSON) * MIN_APPEARANCES_EACH
    rng.shuffle(required)
    total_frames = round(seconds * FPS)
    timeline: list[Segment] = []
    used = 0
    while True:
        is_required = bool(required)
        clip = required.pop() if is_required else rng.choice(list(CLIP_PERSON))
        pair = [_filler(rng), _appearance(rng, clip, durations[clip])]
        room = total_frames - used - sum(s.frames for s in pair)
        if room < FILLER_S[0] * FPS:
            if is_required:
                raise SystemExit(f"--seconds {seconds} is too short for 2 appearances each")
            break
        timeline += pair
        used += sum(s.frames for s in pair)
    timeline.append(_filler(rng, (total_frames - used) / FPS))
    return timeline


def _gradient(rng: np.random.Generator) -> Iterator[Any]:
    """Endless frames of a small, smooth, slowly shifting colour gradient (rgb24, 320x180)."""
    ys, xs = np.mgrid[0:TEXTURE_H, 0:TEXTURE_W] / np.array(TEXTURE_W, dtype=np.float64)
    freqs = rng.uniform(3.0, 12.0, (3, 2))
    speeds = rng.uniform(0.2, 0.8, 3)
    base = rng.uniform(60.0, 190.0, 3)
    index = 0
    while True:
        t = index / FPS
        image = np.stack(
            [
                base[c] + 60.0 * np.sin(freqs[c, 0] * xs + freqs[c, 1] * ys + speeds[c] * t)
                for c in range(3)
            ],
            axis=-1,
        )
        yield av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), "rgb24")
        index += 1


def filler_frames(segment: Segment) -> Iterator[Any]:
    """A drifting colour gradient with fine film grain: costs the codec real bits, has no face.

    The grain is per full-resolution pixel on purpose: grain drawn at low resolution and
    upscaled made blobs at the size of dlib's smallest detection window, and in an early build
    HOG found two (weak) "faces" in them.
    """
    rng = np.random.default_rng(segment.texture_seed)
    grain = rng.normal(0.0, GRAIN_SIGMA, (HEIGHT, WIDTH)).astype(np.int16)
    for index, small in zip(range(segment.frames), _gradient(rng), strict=False):
        packed = small.reformat(width=WIDTH, height=HEIGHT, format="yuv420p").to_ndarray()
        moved = np.roll(grain, shift=(index // 3, index // 2), axis=(0, 1))
        packed[:HEIGHT] = np.clip(packed[:HEIGHT] + moved, 0, 255)
        yield av.VideoFrame.from_ndarray(packed, format="yuv420p")


def _letterbox(frame: Any) -> Any:
    """Scale a clip frame to fit 1280x720 keeping its aspect ratio, centred on black."""
    scale = min(WIDTH / frame.width, HEIGHT / frame.height)
    width = min(WIDTH, round(frame.width * scale / 2) * 2)
    height = min(HEIGHT, round(frame.height * scale / 2) * 2)
    fitted = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    canvas = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    top, left = (HEIGHT - height) // 2, (WIDTH - width) // 2
    canvas[top : top + height, left : left + width] = fitted
    return av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(format="yuv420p")


def appearance_frames(segment: Segment) -> Iterator[Any]:
    """Resample the clip to 30 fps from source_start_s: each output frame shows the source
    frame on screen at that moment (the latest one whose time has come)."""
    assert segment.clip is not None
    with av.open(str(clip_path(segment.clip))) as container:
        decoded = [(frame.time, frame) for frame in container.decode(video=0)]
    first = decoded[0][0]
    cursor = 0
    for index in range(segment.frames):
        wanted = segment.source_start_s + index / FPS
        while cursor + 1 < len(decoded) and decoded[cursor + 1][0] - first <= wanted + 1e-6:
            cursor += 1
        yield _letterbox(decoded[cursor][1])


def _timeline_frames(timeline: list[Segment], truth: list[dict[str, Any]]) -> Iterator[Any]:
    """Every frame of the timeline, timestamped; appends each appearance to `truth` once its
    frames have all been handed out, so its times are those of the frames actually written."""
    written = 0
    for segment in timeline:
        start = written
        frames = filler_frames(segment) if segment.person is None else appearance_frames(segment)
        for frame in frames:
            frame.pts, frame.time_base = written, Fraction(1, FPS)
            yield frame
            written += 1
        if segment.person is not None:
            truth.append(_truth_entry(segment, start, written))


def write_video(path: Path, timeline: list[Segment]) -> list[dict[str, Any]]:
    """Encode the timeline (x264 in its own thread, see common.encode_frames); return the
    appearances with times taken from the frames written."""
    truth: list[dict[str, Any]] = []
    with av.open(str(path), "w") as output:
        stream = output.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        encode_frames(output, stream, _timeline_frames(timeline, truth))
    return truth


def _truth_entry(segment: Segment, start: int, end: int) -> dict[str, Any]:
    """One appearance: frames [start, end) at 30 fps; end_s is exclusive (next frame's time)."""
    return {
        "person": segment.person,
        "start_s": round(start / FPS, 6),
        "end_s": round(end / FPS, 6),
        "start_frame": start,
        "end_frame": end,
        "source_clip": f"{segment.clip}.mp4",
        "source_start_s": segment.source_start_s,
    }


_DETECTOR: list[Any] = []


def _faces_in(item: tuple[int, RgbFrame]) -> tuple[int, int]:
    """(frame index, number of faces dlib HOG finds with 1x upsampling at full resolution)."""
    if not _DETECTOR:
        _DETECTOR.append(dlib.get_frontal_face_detector())
    index, rgb = item
    return index, len(_DETECTOR[0](rgb, 1))


def _filler_frames_in_file(
    path: Path, truth: list[dict[str, Any]], step: int
) -> Iterator[tuple[int, RgbFrame]]:
    """Every `step`-th filler frame as decoded back from the written file (artifacts included)."""
    face_frames = {i for entry in truth for i in range(entry["start_frame"], entry["end_frame"])}
    with av.open(str(path)) as container:
        filler_index = 0
        for index, frame in enumerate(container.decode(video=0)):
            if index in face_frames:
                continue
            if filler_index % step == 0:
                yield index, frame.to_ndarray(format="rgb24")
            filler_index += 1


def verify_face_free(path: Path, truth: list[dict[str, Any]], step: int, workers: int) -> int:
    """Check filler frames for faces; raise if dlib finds any. Returns frames checked."""
    with Pool(workers) as pool:
        results = list(pool.imap(_faces_in, _filler_frames_in_file(path, truth, step), 8))
    bad = [index for index, faces in results if faces]
    if bad:
        raise SystemExit(f"dlib found faces in filler frames {bad[:10]} (of {len(bad)})")
    return len(results)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description="build the long face/filler test video")
    parser.add_argument("--out", type=Path, default=Path("bench/out/long"))
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verify-step", type=int, default=10, help="check every Nth filler frame")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--verify-only", action="store_true", help="re-check an existing long.mp4 + truth.json"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    return parser.parse_args(argv)


def build(out: Path, seconds: float, seed: int) -> dict[str, Any]:
    """Plan and encode the video; return the truth document (without verification results)."""
    check_clip_people()
    out.mkdir(parents=True, exist_ok=True)
    (out / "truth.json").unlink(missing_ok=True)  # only a verified build gets a truth file
    truth = write_video(out / "long.mp4", plan_timeline(random.Random(seed), seconds))
    return {
        "seconds": seconds,
        "seed": seed,
        "fps": FPS,
        "width": WIDTH,
        "height": HEIGHT,
        "appearances": truth,
    }


def is_current(out: Path, seconds: float, seed: int) -> bool:
    """True when out/ holds a verified build made with the same seconds and seed."""
    truth_path = out / "truth.json"
    if not (truth_path.is_file() and (out / "long.mp4").is_file()):
        return False
    truth = json.loads(truth_path.read_text())
    return bool(truth.get("seconds") == seconds and truth.get("seed") == seed)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: plan, encode, verify the filler is face-free, write truth.json."""
    args = _parse_args(argv)
    video, truth_path = args.out / "long.mp4", args.out / "truth.json"
    if not (args.force or args.verify_only) and is_current(args.out, args.seconds, args.seed):
        print(f"{video} is up to date (seconds {args.seconds}, seed {args.seed}); skipping")
        return 0
    start = time.perf_counter()
    if args.verify_only:
        summary = json.loads(truth_path.read_text())
    else:
        summary = build(args.out, args.seconds, args.seed)
        print(
            f"{video}: {summary['seconds']:.0f} s, {video.stat().st_size / 1e6:.1f} MB, "
            f"{len(summary['appearances'])} appearances, "
            f"built in {time.perf_counter() - start:.1f} s"
        )
    start = time.perf_counter()
    step = max(1, args.verify_step)
    checked = verify_face_free(video, summary["appearances"], step, args.workers)
    summary["filler_check"] = {"every_nth_frame": step, "frames_checked": checked, "faces": 0}
    truth_path.write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"{checked} filler frames (every {step}) face-free for dlib HOG, 1x upsampling, "
        f"full resolution ({time.perf_counter() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
