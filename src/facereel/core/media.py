"""Decode videos (PyAV, whose wheel bundles FFmpeg) and still images (Pillow) into upright frames.

A `Picture` is one upright frame at a point in time. Detection wants a small copy (grey or
colour, as the detector says) and embedding wants full-resolution RGB, so a picture produces
each lazily: converting a whole 1080p frame to RGB is only paid for frames where a face must be
embedded.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image, ImageOps, UnidentifiedImageError

from facereel.core.types import ImageArray
from facereel.errors import MediaError

DecodeMode = Literal["all", "nonref", "key", "first"]
Reformatters = dict[tuple[int, int, str], VideoReformatter]  # (width, height, pixel format)
DEFAULT_MAX_PIXELS = 8192 * 8192
MAX_CONSECUTIVE_BAD_PACKETS = 200
MAX_PIXELS_PER_BYTE = 100_000  # decoded pixels per byte of file beyond which it is a bomb
MIN_BOMB_PIXELS = 1e9  # ...when it would decode at least this many
SKIP_FRAME: dict[DecodeMode, str] = {"all": "DEFAULT", "nonref": "NONREF", "key": "NONKEY",
                                     "first": "DEFAULT"}
HEADERS_ONLY = {"skip_frame": "ALL"}  # probing options that decode nothing (see VideoSource)
MAX_PROBED_STREAMS = 32  # ...given to this many streams (a file with more probes the rest)


class Picture(Protocol):
    """One upright frame: `gray(scale)` or `color(scale)` (RGB) for detection, `rgb()` at full
    resolution for embedding."""

    time_s: float
    width: int
    height: int

    def gray(self, scale: float) -> ImageArray: ...

    def color(self, scale: float) -> ImageArray: ...

    def rgb(self) -> ImageArray: ...


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int  # as stored; each picture applies its own display rotation
    height: int
    duration_s: float  # 0 when the container does not say
    fps: float
    codec: str


def _quarter_turns(rotation: int) -> int:
    return (round(rotation / 90)) % 4


class VideoPicture:
    """A decoded video frame, converted on demand (and turned upright per its display matrix)."""

    __slots__ = ("_frame", "_reformatters", "_scaled", "_turns", "height", "time_s", "width")

    def __init__(self, frame: av.VideoFrame, time_s: float, reformatters: Reformatters) -> None:
        self._frame = frame
        self._reformatters = reformatters
        # a frame is often probed twice at one scale (a full detection, then a bisection)
        self._scaled: dict[tuple[str, float], ImageArray] = {}
        # FFmpeg's display rotation is counter-clockwise degrees, as np.rot90 turns.
        self._turns = _quarter_turns(int(frame.rotation or 0))
        self.time_s = time_s
        swap = self._turns % 2 == 1
        self.width = frame.height if swap else frame.width
        self.height = frame.width if swap else frame.height

    def gray(self, scale: float) -> ImageArray:
        return self._scaled_copy("gray", scale)

    def color(self, scale: float) -> ImageArray:
        return self._scaled_copy("rgb24", scale)

    def _scaled_copy(self, pixel_format: str, scale: float) -> ImageArray:
        cached = self._scaled.get((pixel_format, scale))
        if cached is None:
            cached = self._scaled.setdefault((pixel_format, scale),
                                             self._reformat(pixel_format, scale))
        return cached

    def _reformat(self, pixel_format: str, scale: float) -> ImageArray:
        frame = self._frame
        width = max(1, round(frame.width * scale))
        height = max(1, round(frame.height * scale))
        # A reformatter caches its scaling context only while the output size and format stay
        # the same, so keep one per size and format (detection frames, thumbnails): 3-8x faster
        # than frame.reformat.
        if pixel_format == "rgb24" and (width, height) != (frame.width, frame.height):
            # swscale scales into planar RGB 1.5-2.5x faster than into packed RGB (same pixels
            # but for rounding); to_ndarray gives it back as H x W x RGB all the same
            pixel_format = "gbrp"
        key = (width, height, pixel_format)
        reformatter = self._reformatters.get(key)
        if reformatter is None:
            reformatter = self._reformatters.setdefault(key, VideoReformatter())
        small = reformatter.reformat(
            frame, width=width, height=height, format=pixel_format, interpolation="AREA"
        )
        return self._upright(np.asarray(small.to_ndarray(), dtype=np.uint8))

    def rgb(self) -> ImageArray:
        return self._upright(np.asarray(self._frame.to_ndarray(format="rgb24"), dtype=np.uint8))

    def _upright(self, array: ImageArray) -> ImageArray:
        if self._turns:
            array = np.rot90(array, self._turns)
        return np.ascontiguousarray(array)


class ImagePicture:
    """A still image (already upright) as a picture at time 0."""

    __slots__ = ("_rgb", "height", "time_s", "width")

    def __init__(self, rgb: ImageArray) -> None:
        self._rgb = np.ascontiguousarray(rgb)
        self.time_s = 0.0
        self.height, self.width = rgb.shape[:2]

    def gray(self, scale: float) -> ImageArray:
        return self._scaled(Image.fromarray(self._rgb).convert("L"), scale)

    def color(self, scale: float) -> ImageArray:
        return self._rgb if scale == 1.0 else self._scaled(Image.fromarray(self._rgb), scale)

    def _scaled(self, image: Image.Image, scale: float) -> ImageArray:
        if scale != 1.0:
            size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
            image = image.resize(size, Image.Resampling.BOX)
        return np.asarray(image, dtype=np.uint8)

    def rgb(self) -> ImageArray:
        return self._rgb


def load_image(source: Path | bytes, name: str,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> ImagePicture:
    """Decode a still image (EXIF orientation applied) or raise MediaError saying why not.

    The size is checked against `max_pixels` from the header, before any pixel is decoded.
    Pillow's process-wide `Image.MAX_IMAGE_PIXELS` is left alone (the core keeps no global
    state); it stays a backstop only beyond twice its own default (~179 megapixels).
    """
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else source
        with Image.open(handle) as image:
            _check_size(name, image.width, image.height, max_pixels)
            image.load()
            upright = ImageOps.exif_transpose(image) or image
            rgb = np.asarray(upright.convert("RGB"), dtype=np.uint8)
    except Image.DecompressionBombError as exc:
        message = f"{name}: image is too large to process safely ({exc})"
        raise MediaError(message, "too_large") from exc
    except UnidentifiedImageError as exc:
        raise MediaError(f"{name}: not a readable image", "corrupt_image") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{name}: image is corrupt or truncated ({exc})", "corrupt_image") from exc
    return ImagePicture(rgb)


def _check_size(name: str, width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise MediaError(f"{name}: picture has no size ({width}x{height})", "corrupt_image")
    if width * height > max_pixels:
        raise MediaError(
            f"{name}: {width}x{height} is larger than the limit of {max_pixels} pixels "
            "(raise FACEREEL_MAX_PIXELS to allow it)",
            "too_large",
        )


class VideoSource:
    """An opened video file; iterate `pictures(mode)` once. Use as a context manager.

    Opening probes the streams, and FFmpeg decodes their first frames to do it (~3 ms a file
    here, most of a first-frame job's decoding). `headers_only` skips that: size, rate,
    duration and keyframes come from the headers alone, which is all planning needs, but
    frames decoded afterwards miss the display rotation (FFmpeg passes it on from the probe).
    """

    def __init__(self, path: Path, *, threads: int = 1, max_pixels: int = DEFAULT_MAX_PIXELS,
                 headers_only: bool = False) -> None:
        self.name = path.name
        self._container = _open_container(path, headers_only)
        try:
            self._stream = _video_stream(self._container, self.name)
            self.info = _video_info(self._container, self._stream)
            _check_size(self.name, self.info.width, self.info.height, max_pixels)
            _check_expansion(self.name, self.info, path.stat().st_size)
        except BaseException:
            self._container.close()
            raise
        self.decoded_until_s = 0.0  # time of the last frame decoded so far
        self.data_until_s = 0.0  # time of the last packet read (frames may be skipped undecoded)
        self.finished = False  # whether decoding reached the end of the stream
        context = self._stream.codec_context
        context.thread_count = max(1, threads)
        if threads > 1:
            self._stream.thread_type = "AUTO"

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def pictures(self, mode: DecodeMode = "all", start_s: float = 0.0,
                 end_s: float | None = None) -> Iterator[VideoPicture]:
        """Decoded frames in presentation order, from `start_s` up to (not including) `end_s`.

        `nonref` skips frames nothing else refers to (B-frames, ~40% of the decoding work);
        `key` decodes keyframes only; `first` yields the first frame alone, decoding nothing
        else. A window that starts later seeks to the keyframe before it.
        """
        self._stream.codec_context.skip_frame = SKIP_FRAME[mode]
        drain = mode == "first" and start_s <= 0
        origin = self._stream.start_time or 0
        time_base = float(self._stream.time_base or 0)
        if start_s > 0 and time_base:
            self._container.seek(origin + int(start_s / time_base), stream=self._stream,
                                 backward=True, any_frame=False)
        decoded = 0
        reformatters: Reformatters = {}
        for frame in self._decoded_frames(drain):
            if frame.pts is not None and time_base:
                time_s = max(0.0, (frame.pts - origin) * time_base)
            else:
                time_s = decoded / (self.info.fps or 25.0)
            if time_s < start_s:
                continue
            if end_s is not None and time_s >= end_s:
                self.finished = True
                return
            decoded += 1
            self.decoded_until_s = max(self.decoded_until_s, time_s)
            yield VideoPicture(frame, time_s, reformatters)
            if drain:
                return
        if decoded == 0 and start_s == 0:
            raise MediaError(f"{self.name}: no frame could be decoded", "decode_error")
        self.finished = True

    def keyframe_times(self) -> list[float]:
        """Times of the keyframes the container's index lists (empty when it has no index)."""
        time_base = float(self._stream.time_base or 0)
        origin = self._stream.start_time or 0
        try:
            entries = self._stream.index_entries
            return [max(0.0, (e.timestamp - origin) * time_base) for e in entries
                    if e.is_keyframe]
        except (AttributeError, av.error.FFmpegError):
            return []

    def check_complete(self) -> None:
        """After decoding to the end: raise if much of the declared duration was missing."""
        duration = self.info.duration_s
        reached = max(self.decoded_until_s, self.data_until_s)
        if self.finished and duration > 0 and duration - reached > max(0.5, 0.05 * duration):
            raise MediaError(
                f"{self.name}: video is truncated or damaged: its data ends at {reached:.1f} s "
                f"of its {duration:.1f} s",
                "truncated",
            )

    def _decoded_frames(self, drain: bool = False) -> Iterator[av.VideoFrame]:
        """Frames as the decoder gives them. With `drain`, the decoder is drained after the
        first packet it takes: a decoder that reorders frames holds the first one back until
        it has decoded the next two or three, which a caller wanting only that one never
        needs (identical pixels, ~2.5 ms less per video here)."""
        bad_in_a_row = 0
        origin = self._stream.start_time or 0
        time_base = float(self._stream.time_base or 0)
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
                frames = packet.decode()
            except StopIteration:
                return
            except (av.error.FFmpegError, ValueError):
                # A damaged packet: skip it and keep going (a truncated or partly corrupt file
                # still yields every frame that can be decoded).
                bad_in_a_row += 1
                if bad_in_a_row > MAX_CONSECUTIVE_BAD_PACKETS:
                    return
                continue
            bad_in_a_row = 0
            if drain and not frames:
                frames = self._drained()
                drain = False  # once: a decoder that gave nothing then decodes as usual
            if packet.pts is not None:
                self.data_until_s = max(self.data_until_s, (packet.pts - origin) * time_base)
            yield from frames

    def _drained(self) -> list[av.VideoFrame]:
        """What the decoder holds back, then the decoder reset so it can take packets again."""
        context = self._stream.codec_context
        try:
            frames: list[av.VideoFrame] = context.decode(None)
        except (av.error.FFmpegError, ValueError):
            frames = []
        context.flush_buffers()
        return frames


def _open_container(path: Path, headers_only: bool = False) -> Any:
    # PyAV's stub types stream_options as strings; it takes one dict of options per stream
    probe: dict[str, Any] = {"stream_options": [HEADERS_ONLY] * MAX_PROBED_STREAMS}
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore",
                       **(probe if headers_only else {}))
    except av.error.FileNotFoundError as exc:
        raise MediaError(f"{path.name}: file not found", "not_found") from exc
    except av.error.PermissionError as exc:
        raise MediaError(f"{path.name}: permission denied", "unreadable") from exc
    except av.error.FFmpegError as exc:
        raise MediaError(
            f"{path.name}: not a readable video (truncated or corrupt container: {exc.strerror})",
            "corrupt_video",
        ) from exc


def _video_stream(container: Any, name: str) -> Any:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise MediaError(
            f"{name}: has no video stream (contains: {', '.join(kinds)})", "no_video_stream"
        )
    return container.streams.video[0]


def _check_expansion(name: str, info: VideoInfo, file_bytes: int) -> None:
    """Refuse a decompression bomb before decoding it: a video that declares far more pixels
    to decode than any real footage packs into its size (a 209 KB file of 600 frames at
    8192x8192 took 48 s of CPU). Real video stays under ~10^4 decoded pixels per byte even
    for static screen captures; ordinary footage is near 10^2."""
    pixels = float(info.width) * info.height * info.fps * info.duration_s
    if pixels > MIN_BOMB_PIXELS and pixels > MAX_PIXELS_PER_BYTE * max(1, file_bytes):
        raise MediaError(
            f"{name}: declares {pixels:.3g} pixels to decode ({info.width}x{info.height}, "
            f"{info.fps:g} fps, {info.duration_s:.1f} s) in only {file_bytes} bytes: refused "
            "as a decompression bomb", "too_large")


def _video_info(container: Any, stream: Any) -> VideoInfo:
    context = stream.codec_context
    width, height = int(context.width), int(context.height)
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    else:
        duration = 0.0
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return VideoInfo(width, height, duration, float(rate or 0.0), context.name)
