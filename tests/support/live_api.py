"""One live API for the API tests: the real composition `facereel up` serves (embedded
ports, the image tier with a real app-tier worker process, a pipeline worker thread), started
once per test package through the `live` fixture."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from facereel.config import Settings
from facereel.core.gallery_io import read_gallery_file
from facereel.http.app import create_app
from facereel.http.server import build_services
from facereel.http.services import Services
from facereel.ports.metadata import read_people_json
from facereel.runtime.workers import Worker
from tests.support.frames import cut_frames
from tests.support.stages import ports_of
from tests.support.truth import CLIP_PEOPLE

KEY = "key-one"  # an admin key: may search the face memory and forget
AUTH = {"Authorization": f"Bearer {KEY}"}
READER = "key-reader"  # may only read (GET)


@dataclass
class Live:
    client: TestClient
    app: FastAPI
    settings: Settings
    services: Services
    frames: list[tuple[Path, str]]
    root: Path  # holds the data dir; nothing may be written beside it


def start_live(tmp_path_factory: pytest.TempPathFactory, cse546: Path,
               clips: dict[str, Path]) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("api")
    settings = Settings(data_dir=root / "data", workers=1,
                        api_keys=f"{KEY}:admin,key-two,{READER}:read",
                        app_workers_min=1, app_workers_max=1, max_image_mb=2, max_video_mb=5,
                        recognize_timeout=120, image_timeout=60)
    read_gallery_file(cse546 / "encoding", settings.recognition.embedder, 128).save(
        settings.storage.gallery_path)
    ports = ports_of(settings)
    ports.metadata.put_people(read_people_json(cse546 / "student_data.json"))
    frames = cut_frames(clips, CLIP_PEOPLE, tmp_path_factory.mktemp("frames"), per_clip=1)
    services, tier = build_services(settings, ports, lambda: 1)
    stop = threading.Event()
    threads = [threading.Thread(target=Worker(settings, 0, ports).run, args=(stop,)),
               threading.Thread(target=tier.run, args=(stop,))]
    for thread in threads:
        thread.start()
    try:
        app = create_app(services)
        with TestClient(app) as client:
            yield Live(client, app, settings, services, frames, root)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        tier.close()


def jpeg(color: tuple[int, int, int] = (128, 128, 128), size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


def frame_of(live: Live, person: str) -> Path:
    return next(path for path, name in live.frames if name == person)


def wait_job(live: Live, job_id: str, timeout_s: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc: dict[str, Any] = live.client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        if doc["status"] in ("done", "failed"):
            return doc
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s")


