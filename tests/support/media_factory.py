"""Make small test videos from the real clips: other codecs and containers, rotation metadata,
odd sizes, variable frame rate, timelines with known appearances, and broken files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

# codec -> (encoder, options) tuned for speed: tests encode many short clips
ENCODERS: dict[str, tuple[str, dict[str, str]]] = {
    "h264": ("libx264", {"preset": "ultrafast", "crf": "23"}),
    "hevc": ("libx265", {"preset": "ultrafast", "crf": "28", "x265-params": "log-level=error"}),
    "vp9": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "crf": "35", "b": "0"}),
    "av1": ("libsvtav1", {"preset": "12", "crf": "40"}),
}


def read_frames(src: Path, seconds: float | None = None, start: float = 0.0) -> Iterator[
        tuple[float, np.ndarray]]:
    """(time, RGB frame) of a clip between `start` and `start + seconds`."""
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            time = float(frame.time or 0.0)
            if time < start:
                continue
            if seconds is not None and time >= start + seconds:
                break
            yield time - start, frame.to_ndarray(format="rgb24")


def fit(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to exactly width x height (even sizes are not required by every encoder)."""
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR))


@dataclass
class Writer:
    """Encode RGB frames with explicit timestamps (so variable frame rate is possible)."""

    path: Path
    width: int
    height: int
    codec: str = "h264"
    fps: int = 24
    rotation: int = 0

    def __enter__(self) -> Writer:
        encoder, options = ENCODERS[self.codec]
        self._container = av.open(str(self.path), mode="w")
        stream = self._container.add_stream(encoder, rate=self.fps, options=options)
        assert isinstance(stream, av.video.stream.VideoStream)
        self._stream = stream
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p"
        # millisecond timestamps end to end, so any frame timing (even irregular) survives
        self._stream.time_base = Fraction(1, 1000)
        self._stream.codec_context.time_base = Fraction(1, 1000)
        if self.rotation:
            self._stream.set_display_rotation(self.rotation)
        return self

    def write(self, rgb: np.ndarray, time_s: float) -> None:
        frame = av.VideoFrame.from_ndarray(fit(rgb, self.width, self.height), format="rgb24")
        frame.pts = round(time_s * 1000)
        frame.time_base = Fraction(1, 1000)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def __exit__(self, *exc: object) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()


def transcode(src: Path, dst: Path, *, codec: str = "h264", seconds: float = 1.0,
              height: int = 360, width: int | None = None, rotation: int = 0,
              vfr: bool = False) -> Path:
    """A short re-encoding of `src`; with `rotation` the pixels are stored turned and the
    display matrix says how to turn them back, as phones do."""
    frames = list(read_frames(src, seconds))
    h0, w0 = frames[0][1].shape[:2]
    width = width or round(w0 * height / h0 / 2) * 2
    turns = (rotation // 90) % 4
    stored_w, stored_h = (height, width) if turns % 2 else (width, height)
    with Writer(dst, stored_w, stored_h, codec, rotation=rotation) as writer:
        for index, (time, rgb) in enumerate(frames):
            if vfr and index % 3 == 1:
                continue  # drop frames irregularly: timestamps are no longer evenly spaced
            # store the picture turned the other way; the player's rotation undoes it
            stored = np.rot90(fit(rgb, width, height), -turns) if turns else rgb
            writer.write(np.ascontiguousarray(stored), time)
    return dst


def blank_like(height: int, width: int, seed: int) -> np.ndarray:
    """A face-free frame: smooth coloured noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, size=(9, 16, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC))


def timeline(dst: Path, segments: list[tuple[Path | None, float]], *, width: int = 640,
             height: int = 360, fps: int = 24) -> list[tuple[float, float]]:
    """Concatenate segments (clip, seconds) or (None, seconds) for a face-free stretch.

    Returns the exact (start, end) times of each clip segment in the output.
    """
    spans: list[tuple[float, float]] = []
    time = 0.0
    step = 1.0 / fps
    with Writer(dst, width, height, fps=fps) as writer:
        for index, (clip, seconds) in enumerate(segments):
            start = time
            if clip is None:
                blank = blank_like(height, width, index)
                frames = [blank] * round(seconds * fps)
            else:
                source = [rgb for _, rgb in read_frames(clip)]
                count = round(seconds * fps)
                frames = [source[i * len(source) // count] for i in range(count)]
            for rgb in frames:
                writer.write(rgb, time)
                time += step
            if clip is not None:
                spans.append((start, time - step))
    return spans


def clip_seconds(src: Path) -> float:
    """How long a clip lasts: its last frame's time plus one frame."""
    times = [time for time, _ in read_frames(src)]
    return times[-1] + (times[-1] - times[0]) / max(1, len(times) - 1)


@dataclass(frozen=True)
class Placement:
    """Scale and move a clip's frames so the face at `face` (a box in the clip) lands on
    `target` (a box in the output): two clips placed on one target are framed identically."""

    face: tuple[int, int, int, int]
    target: tuple[int, int, int, int]

    def apply(self, rgb: np.ndarray, width: int, height: int) -> np.ndarray:
        scale = (self.target[2] - self.target[0]) / (self.face[2] - self.face[0])
        # output pixel (x, y) shows clip pixel (x / scale + dx, y / scale + dy); black outside
        dx = (self.face[0] + self.face[2]) / 2 - (self.target[0] + self.target[2]) / 2 / scale
        dy = (self.face[1] + self.face[3]) / 2 - (self.target[1] + self.target[3]) / 2 / scale
        image = Image.fromarray(rgb).transform(
            (width, height), Image.Transform.AFFINE, (1 / scale, 0, dx, 0, 1 / scale, dy),
            resample=Image.Resampling.BILINEAR)
        return np.asarray(image)


@dataclass(frozen=True)
class Segment:
    """`seconds` of a clip from `start_s` in real time (None: a face-free stretch), scaled to
    the output size, or placed (see Placement)."""

    clip: Path | None
    seconds: float
    start_s: float = 0.0
    placement: Placement | None = None


def montage(dst: Path, segments: list[Segment], *, width: int = 640, height: int = 360,
            fps: int = 24) -> list[tuple[float, float]]:
    """Cut segments together; returns the (first, last) frame times of each clip segment.

    Unlike `timeline`, a clip plays at its own speed from `start_s`: each output frame shows
    the clip's frame on screen at that moment.
    """
    spans: list[tuple[float, float]] = []
    written = 0
    with Writer(dst, width, height, fps=fps) as writer:
        for index, segment in enumerate(segments):
            count = round(segment.seconds * fps)
            for rgb in _segment_frames(segment, count, fps, width, height, index):
                writer.write(rgb, written / fps)
                written += 1
            if segment.clip is not None:
                spans.append(((written - count) / fps, (written - 1) / fps))
    return spans


def _segment_frames(segment: Segment, count: int, fps: int, width: int, height: int,
                    seed: int) -> Iterator[np.ndarray]:
    """The segment's output frames, made one at a time (clips may be 1080p)."""
    if segment.clip is None:
        yield from [blank_like(height, width, seed)] * count
        return
    source = read_frames(segment.clip, segment.seconds + 1.0, segment.start_s)
    current, upcoming = next(source), next(source, None)
    for index in range(count):
        while upcoming is not None and upcoming[0] <= index / fps + 1e-6:
            current, upcoming = upcoming, next(source, None)
        placed = segment.placement
        yield placed.apply(current[1], width, height) if placed else fit(current[1], width, height)
