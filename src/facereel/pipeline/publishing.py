"""Writing a result where people look: the output bucket's `<key>.json` (the result document,
named after the input's whole key, so `x.mp4` and `x.mkv` never share one), `<stem>.txt` and
`<stem>.csv` (the seed files the coursework's tools read: when two inputs share a stem they
hold the latest published result) and the video's metadata row."""

from __future__ import annotations

import json
import posixpath
import time
from functools import partial

from facereel.core.results import ErrorInfo, VideoResult, seed_csv, seed_txt
from facereel.pipeline.wiring import Ports
from facereel.ports.metadata import VideoRecord
from facereel.ports.objectstore import md5_hex, safe_key, stem_of
from facereel.ports.transfers import run_all

NAME_MAX = 255  # bytes of one name in a folder bucket (and most file systems)


def _fit(key: str, suffix: str) -> str:
    """`key + suffix`, with the last name shortened (and made unique by a hash of it) when it
    would not fit in a file name: an input called with 250 bytes keeps its outputs."""
    folder, _, name = key.rpartition("/")
    if len((name + suffix).encode("utf-8", "surrogateescape")) > NAME_MAX:
        digest = md5_hex(name.encode("utf-8", "surrogateescape"))[:12]
        short = name.encode("utf-8", "surrogateescape")[:200].decode("utf-8", "ignore")
        name = f"{short}~{digest}"
    return f"{folder}/{name}{suffix}" if folder else f"{name}{suffix}"


def output_stem(key: str) -> str:
    """The seed files' name of an input key: `dir/video.mp4` -> `dir/video` (.txt/.csv)."""
    return _fit(safe_key(stem_of(key)), ".txt").removesuffix(".txt")


def result_key(key: str) -> str:
    """The result document of an input key: `dir/video.mp4` -> `dir/video.mp4.json`."""
    return _fit(safe_key(key), ".json")


def legacy_result_key(key: str) -> str:
    """Where results were published before they were named after the whole key (`<stem>.json`):
    still read when no `<key>.json` exists, if that document is about this key."""
    return f"{output_stem(key)}.json"


def output_files(key: str, result: VideoResult) -> list[tuple[str, str, str]]:
    """(name, text, content type) of a result's three outputs, wherever they are written (the
    output bucket, a folder of `recognize --out`, a batch's bucket)."""
    stem = output_stem(key)
    return [(result_key(key), json.dumps(result.to_dict(), indent=1), "application/json"),
            (f"{stem}.txt", seed_txt(result), "text/plain"),
            (f"{stem}.csv", seed_csv(result), "text/csv")]


def face_files(key: str, result: VideoResult) -> list[tuple[str, bytes]]:
    """(name, JPEG) of the face crops a result carries (`recognize --out`), named as its `face`
    fields say: relative to the document's folder."""
    folder = posixpath.dirname(result_key(key))
    return [(posixpath.join(folder, face), image) for face, image in result.face_images.items()]


def publish_result(ports: Ports, key: str, etag: str, result: VideoResult) -> None:
    """Write a result's output files and the video's metadata row (also used to report uploads
    refused at the door, so every input ends as one record in the same place)."""
    files = output_files(key, result)
    run_all(ports.output, [partial(ports.output.put_bytes, name, text.encode(), None, kind)
                           for name, text, kind in files])
    error = result.error or ErrorInfo("", "")
    ports.metadata.put_video(VideoRecord(
        key, etag, "error" if result.status == "error" else "done", time.time(),
        result_key=result_key(key), people=[p.person for p in result.people],
        error_code=error.code, error_message=error.message))
