"""Decode-only baseline: every reference frame of every video, with PyAV, and nothing else.

What the adaptive default cannot avoid: it must look at the whole clip, and P-frames cannot be
decoded without the frames before them. This decodes exactly the frames facereel's adaptive
mode decodes (`skip_frame=NONREF`: B-frames nothing refers to are skipped) with FFmpeg's
normal decoding (deblocking included), converts nothing, and keeps nothing. It runs as a user
would run it: a process with a pool of workers, start-up included, so its CPU time is the
floor a whole-video pipeline on these files is compared with.

    python bench/decode_only.py VIDEO_DIR [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
from multiprocessing import Pool
from pathlib import Path

import av


def decode(path: Path) -> int:
    """Decode every reference frame of `path`; returns how many."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        return sum(1 for _ in container.decode(stream))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("video_dir", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    videos = sorted(args.video_dir.glob("*.mp4"))
    with Pool(args.workers) as pool:
        frames = sum(pool.imap_unordered(decode, videos, chunksize=1))
    print(f"{len(videos)} videos, {frames} reference frames decoded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
