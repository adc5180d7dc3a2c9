"""Every kind of bad input a user can hand facereel, each with the error code it must produce."""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def _png_with_size(path: Path, width: int, height: int) -> None:
    """A PNG whose header declares a huge picture (the pixel data never comes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        samples = (np.sin(np.linspace(0, 440 * 2 * np.pi, 44100)) * 0.2).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 44100, 0, Fraction(1, 44100)
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _huge_video(path: Path) -> None:
    """One small MJPEG frame in a container that declares 9000x9000."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width = stream.height = 9000
        stream.pix_fmt = "yuvj420p"
        frame = av.VideoFrame(9000, 9000, "yuvj420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _decompression_bomb(path: Path, side: int = 8192, frames: int = 600) -> None:
    """600 frames of 8192x8192 in ~210 KB (the attack that took 48 s of CPU): one constant
    I-frame, then one P-frame that changes nothing, muxed again and again (encoding each
    frame would take minutes; the stream is the same)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={
            "preset": "ultrafast", "crf": "51", "bframes": "0", "keyint": "100000"})
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        frame = av.VideoFrame(side, side, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        packets = []
        for index in range(2):
            frame.pts = index
            packets += list(stream.encode(frame))
        packets += list(stream.encode(None))
        container.mux(packets[0])
        repeat = bytes(packets[1])
        for index in range(1, frames):
            packet = av.Packet(repeat)
            packet.stream, packet.time_base = stream, packets[1].time_base
            packet.pts = packet.dts = index * (packets[1].pts or 1)
            container.mux(packet)


def make_bad_inputs(folder: Path, real_clip: Path) -> dict[str, str]:
    """Write the bad inputs into `folder`; returns file name -> expected error code."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = real_clip.read_bytes()
    (folder / "zero.mp4").write_bytes(b"")
    (folder / "truncated.mp4").write_bytes(clip[: len(clip) // 2])
    (folder / "headless.mp4").write_bytes(clip[len(clip) // 2:])
    (folder / "notes.mp4").write_text("this is a text file, not a video\n" * 10)
    _audio_only(folder / "song.mp4")
    (folder / "photo.mp4").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    (folder / "readme.txt").write_text("hello")
    (folder / "unreadable.mp4").symlink_to("/proc/self/mem")  # reading it fails with EIO
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    _png_with_size(folder / "huge.png", 100_000, 100_000)
    _huge_video(folder / "huge.mkv")
    _decompression_bomb(folder / "bomb.mp4")
    return {
        "zero.mp4": "empty_file",
        "truncated.mp4": "truncated",
        "headless.mp4": "not_media",
        "notes.mp4": "not_media",
        "song.mp4": "no_video_stream",
        "photo.mp4": "wrong_extension",
        "readme.txt": "unsupported_type",
        "unreadable.mp4": "unreadable",
        "corrupt.jpg": "corrupt_image",
        "huge.png": "too_large",
        "huge.mkv": "too_large",
        "bomb.mp4": "too_large",
    }
