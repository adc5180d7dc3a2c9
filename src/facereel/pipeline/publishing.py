"""Writing a result where people look: the output bucket's `<stem>.json/.txt/.csv` and the
video's metadata row. Used by the publish stage and to report uploads refused at the door."""

from __future__ import annotations

import json
import time
from functools import partial

from facereel.core.results import ErrorInfo, VideoResult, seed_csv, seed_txt
from facereel.pipeline.wiring import Ports
from facereel.ports.metadata import VideoRecord
from facereel.ports.objectstore import safe_key, stem_of
from facereel.ports.transfers import run_all


def output_stem(key: str) -> str:
    """Output objects of an input key: `dir/video.mp4` -> `dir/video` (.json/.txt/.csv)."""
    return safe_key(stem_of(key))


def publish_result(ports: Ports, key: str, etag: str, result: VideoResult) -> None:
    """Write a result's output files and the video's metadata row (also used to report uploads
    refused at the door, so every input ends as one record in the same place)."""
    stem = output_stem(key)
    files = [(f"{stem}.json", json.dumps(result.to_dict(), indent=1), "application/json"),
             (f"{stem}.txt", seed_txt(result), "text/plain"),
             (f"{stem}.csv", seed_csv(result), "text/csv")]
    run_all(ports.output, [partial(ports.output.put_bytes, name, text.encode(), None, kind)
                           for name, text, kind in files])
    error = result.error or ErrorInfo("", "")
    ports.metadata.put_video(VideoRecord(
        key, etag, "error" if result.status == "error" else "done", time.time(),
        result_key=f"{stem}.json", people=[p.person for p in result.people],
        error_code=error.code, error_message=error.message))
