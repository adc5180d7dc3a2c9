"""Build the 100-video workload as 100 *distinct* re-encodings of the 8 real clips.

The original coursework workload is the 8 clips copied byte-for-byte 100 times, which lets a
cache (or a lucky first frame) make any pipeline look good. Here each video of test_case_2.csv
is re-encoded from its clip with its own random start offset, crop, downscale, mirror flip and
x264 quality, so every file differs while `mapping` stays its ground truth.

    python bench/make_videos.py --out bench/out/videos [--count 100] [--seed 546] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import av
import numpy as np

from common import CLIP_PERSON, check_clip_people, clip_path, encode_frames, read_workload

SCALES = (1.0, 0.85, 0.75, 0.6, 0.5)
PRESETS = ("veryfast", "fast", "medium")
MAX_START_OFFSET_S = 0.4
MIN_KEEP = 0.8


@dataclass(frozen=True)
class Transform:
    """The random edits applied to one video (all recorded in the manifest)."""

    start_offset_s: float
    crop_x: int
    crop_y: int
    crop_w: int
    crop_h: int
    scale: float
    out_w: int
    out_h: int
    flip: bool
    crf: int
    preset: str


@dataclass(frozen=True)
class Job:
    """One video to build: its workload name, its source clip and its transform."""

    video: str
    clip: str
    transform: Transform
    out_dir: Path


def _even(value: float) -> int:
    """Round down to an even number (>= 2): yuv420p needs even width and height."""
    return max(2, int(value) // 2 * 2)


def draw_transform(rng: random.Random, width: int, height: int) -> Transform:
    """Draw one video's edits; the crop window stays inside the removed margin (face kept)."""
    offset = round(rng.uniform(0.0, MAX_START_OFFSET_S), 3)
    crop_w = _even(width * rng.uniform(MIN_KEEP, 1.0))
    crop_h = _even(height * rng.uniform(MIN_KEEP, 1.0))
    crop_x = rng.randint(0, (width - crop_w) // 2) * 2
    crop_y = rng.randint(0, (height - crop_h) // 2) * 2
    scale = rng.choice(SCALES)
    return Transform(
        start_offset_s=offset,
        crop_x=crop_x,
        crop_y=crop_y,
        crop_w=crop_w,
        crop_h=crop_h,
        scale=scale,
        out_w=_even(crop_w * scale),
        out_h=_even(crop_h * scale),
        flip=rng.random() < 0.5,
        crf=rng.randint(18, 32),
        preset=rng.choice(PRESETS),
    )


def _clip_geometry(clip: str) -> tuple[int, int]:
    """Width and height of a clip's video stream."""
    with av.open(str(clip_path(clip))) as container:
        context = container.streams.video[0].codec_context
        return int(context.width), int(context.height)


def plan_jobs(count: int, seed: int, out_dir: Path) -> list[Job]:
    """One job per workload video; each draws from its own RNG so plans don't depend on count."""
    workload = list(read_workload().items())
    if not 0 < count <= len(workload):
        raise SystemExit(f"--count must be in 1..{len(workload)} (the videos `mapping` grades)")
    geometry = {clip: _clip_geometry(clip) for clip in set(dict(workload).values())}
    jobs = []
    for video, clip in workload[:count]:
        rng = random.Random(f"{seed}:{video}")
        jobs.append(Job(video, clip, draw_transform(rng, *geometry[clip]), out_dir))
    return jobs


def _yuv_planes(frame: Any) -> list[np.ndarray[Any, Any]]:
    """The Y, U and V planes of a yuv420p frame as 2-D arrays (no colour conversion)."""
    height, width = frame.height, frame.width
    packed = frame.to_ndarray()  # (height * 3 / 2, width): Y rows, then U, then V
    luma_end, chroma = height, (height // 2) * (width // 2)
    flat = packed.reshape(-1)
    u_plane = flat[luma_end * width : luma_end * width + chroma].reshape(height // 2, width // 2)
    v_plane = flat[luma_end * width + chroma :].reshape(height // 2, width // 2)
    return [packed[:height], u_plane, v_plane]


def transform_frame(frame: Any, t: Transform) -> Any:
    """Crop and mirror in YUV with numpy, then scale with swscale (VideoFrame.reformat).

    Working on the planes directly skips two RGB conversions per frame, which dominated the
    build time; crop offsets and sizes are even so the half-size chroma planes line up.
    """
    y_plane, u_plane, v_plane = _yuv_planes(frame)
    x, y, w, h = t.crop_x, t.crop_y, t.crop_w, t.crop_h
    parts = [
        y_plane[y : y + h, x : x + w],
        u_plane[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2],
        v_plane[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2],
    ]
    if t.flip:
        parts = [part[:, ::-1] for part in parts]
    packed = np.concatenate([part.reshape(-1) for part in parts]).reshape(h * 3 // 2, w)
    cropped = av.VideoFrame.from_ndarray(packed, format="yuv420p")
    if (t.out_w, t.out_h) == (w, h):
        return cropped
    return cropped.reformat(width=t.out_w, height=t.out_h, interpolation="BILINEAR")


def _open_encoder(output: Any, rate: Fraction, t: Transform) -> Any:
    """An x264 yuv420p stream at the source frame rate with this video's crf and preset."""
    stream = output.add_stream("libx264", rate=rate)
    stream.width, stream.height = t.out_w, t.out_h
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": str(t.crf), "preset": t.preset}
    return stream


def _source_frames(source: Any, t: Transform) -> Iterator[Any]:
    """The clip's frames from the start offset on, cropped, mirrored and scaled."""
    first_time: float | None = None
    for frame in source.decode(source.streams.video[0]):
        first_time = frame.time if first_time is None else first_time
        if frame.time - first_time >= t.start_offset_s:
            yield transform_frame(frame.reformat(format="yuv420p"), t)


def encode_video(job: Job) -> dict[str, Any]:
    """Decode the clip with PyAV, transform its frames, re-encode them; return a manifest entry.

    The encoder runs in its own thread (see common.encode_frames) and build() gives every
    video a fresh worker process, so the same seed rebuilds the same bytes.
    """
    t = job.transform
    target = job.out_dir / job.video
    with av.open(str(clip_path(job.clip))) as source, av.open(str(target), "w") as output:
        in_stream = source.streams.video[0]
        in_stream.thread_type = "AUTO"
        if in_stream.average_rate is None:
            raise ValueError(f"{job.clip}: no frame rate")
        rate = Fraction(in_stream.average_rate)
        stream = _open_encoder(output, rate, t)
        frames = encode_frames(output, stream, _numbered(_source_frames(source, t), rate))
    return _manifest_entry(job, rate, frames, target)


def _numbered(frames: Iterator[Any], rate: Fraction) -> Iterator[Any]:
    """Give frames consecutive timestamps at `rate` (the start offset is cut, not kept)."""
    for index, frame in enumerate(frames):
        frame.pts, frame.time_base = index, 1 / rate
        yield frame


def _manifest_entry(job: Job, rate: Fraction, frames: int, target: Path) -> dict[str, Any]:
    """What the manifest records about one built video."""
    return {
        "video": job.video,
        "source_clip": f"{job.clip}.mp4",
        "person": CLIP_PERSON[job.clip],
        "transforms": asdict(job.transform),
        "width": job.transform.out_w,
        "height": job.transform.out_h,
        "fps": float(rate),
        "frames": frames,
        "duration": round(frames / float(rate), 4),
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
    }


def check_distinct(entries: list[dict[str, Any]]) -> None:
    """The whole point of the workload: no two videos may share bytes."""
    seen: dict[str, str] = {}
    for entry in entries:
        other = seen.setdefault(entry["sha256"], entry["video"])
        if other != entry["video"]:
            raise SystemExit(f"{entry['video']} has the same bytes as {other}")


def manifest_is_current(manifest_path: Path, seed: int, count: int) -> bool:
    """True when a previous build with the same seed and count is complete on disk."""
    if not manifest_path.is_file():
        return False
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("seed") != seed or manifest.get("count") != count:
        return False
    return all((manifest_path.parent / v["video"]).is_file() for v in manifest["videos"])


def remove_stale(out_dir: Path, jobs: list[Job]) -> None:
    """Delete videos of an earlier, larger build so a directory scan sees only this workload.

    Only done in a folder that already holds our manifest, so a mistyped --out never loses data.
    """
    if not (out_dir / "manifest.json").is_file():
        return
    planned = {job.video for job in jobs}
    for path in out_dir.glob("test_*.mp4"):
        if path.name not in planned:
            path.unlink()


def build(out_dir: Path, count: int, seed: int, workers: int) -> list[dict[str, Any]]:
    """Build every video with a process pool and write manifest.json next to them."""
    check_clip_people()
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = plan_jobs(count, seed, out_dir)
    remove_stale(out_dir, jobs)
    with Pool(workers, maxtasksperchild=1) as pool:  # fresh heap per video: reproducible
        entries = pool.map(encode_video, jobs, chunksize=1)
    check_distinct(entries)
    manifest = {"seed": seed, "count": count, "videos": entries}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return entries


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("bench/out/videos"))
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=546)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    manifest_path = args.out / "manifest.json"
    if not args.force and manifest_is_current(manifest_path, args.seed, args.count):
        print(f"{manifest_path} is up to date (seed {args.seed}, count {args.count}); skipping")
        return 0
    start = time.perf_counter()
    entries = build(args.out, args.count, args.seed, args.workers)
    elapsed = time.perf_counter() - start
    total_mb = sum((args.out / e["video"]).stat().st_size for e in entries) / 1e6
    print(f"built {len(entries)} distinct videos ({total_mb:.1f} MB) in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
