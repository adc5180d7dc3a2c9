"""A real `facereel up` serving HTTP on 127.0.0.1: the API end to end, a load test of the
image tier with the autoscaler at work, and the refusals that keep an open API off the network."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.conftest import CLIP_PEOPLE, REPO_ROOT
from tests.support.frames import cut_frames
from tests.support.http_service import HttpService
from tests.support.pipeline import FACEREEL, s3_buckets
from tests.support.servers import MotoServer

BURST = 200
SCALE_IN_DELAY_S = 3


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, cse546: Path) -> Iterator[HttpService]:
    service = HttpService(tmp_path_factory.mktemp("up") / "data", env={
        "FACEREEL_APP_WORKERS_MIN": "1", "FACEREEL_APP_WORKERS_MAX": "2",
        "FACEREEL_BACKLOG_PER_WORKER": "4", "FACEREEL_SCALE_IN_DELAY": str(SCALE_IN_DELAY_S)})
    with service.running(cse546):
        yield service


@pytest.fixture(scope="module")
def frames(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
           ) -> list[tuple[Path, str]]:
    return cut_frames(clips, CLIP_PEOPLE, tmp_path_factory.mktemp("frames"), per_clip=6)


def test_the_api_end_to_end(service: HttpService, clips: dict[str, Path],
                            frames: list[tuple[Path, str]]) -> None:
    assert httpx.get(f"{service.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{service.url}/v1/status").status_code == 401
    assert httpx.get(f"{service.url}/v1/status",
                     headers={"Authorization": "Bearer nope"}).status_code == 401
    with service.client() as client:
        path, person = frames[0]
        answer = client.post("/", files={"inputFile": (path.name, path.read_bytes())})
        assert answer.text == f"{path.name}:{person}"
        video = clips["test_8"].read_bytes()
        created = client.post("/v1/videos", files={"file": ("t8.mp4", video)})
        job_id = created.json()["job"]
        deadline = time.monotonic() + 180
        while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] not in ("done",
                                                                                 "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.3)
        assert job["result"]["people"][0]["person"] == "president_obama"
        assert client.get("/v1/results/t8.mp4").json()["people"][0]["metadata"]["major"]
        assert (service.data_dir / "buckets" / "output" / "t8.mp4.json").exists()
        assert service.metric(client, "facereel_videos", 'status="done"') >= 1
        assert client.get("/").status_code == 200
        photo, person = frames[1]
        files = {"files": (photo.name, photo.read_bytes())}
        taken = client.post("/v1/people/Someone/faces", files=files)
        assert taken.status_code == 409 and person in taken.json()["error"]["message"]
        enrolled = client.post("/v1/people/Someone/faces?force=true", files=files)
        assert enrolled.status_code == 200 and enrolled.json()["enrolled"] == 1
        assert client.delete("/v1/people/Someone").status_code == 204
    report = json.loads(service.cli("status", "--json").stdout)
    assert report["workers"]["pipeline"] == 1 and report["workers"]["app"] >= 1, report
    assert "images" in report["queues"], "the CLI shows the image queue as /v1/status does"
    assert service.process is not None
    maps = Path(f"/proc/{service.process.pid}/maps").read_text()
    assert "onnxruntime" not in maps, "no model ran in the web process: enrolment is a worker's"


async def _burst(url: str, key: str, frames: list[tuple[Path, str]], count: int = BURST
                 ) -> list[tuple[float, int, str, str]]:
    """`count` requests at once; (latency, status, answer, expected) each."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        async def one(number: int) -> tuple[float, int, str, str]:
            path, person = frames[number % len(frames)]
            name = f"r{number:03d}-{path.name}"
            started = time.perf_counter()
            response = await client.post("/v1/images",
                                         files={"inputFile": (name, path.read_bytes())})
            return time.perf_counter() - started, response.status_code, response.text, \
                f"{name}:{person}"

        return await asyncio.gather(*(one(n) for n in range(count)))


def _app_workers(client: httpx.Client) -> int:
    return int(client.get("/v1/status").json()["workers"]["app"])


def test_a_burst_of_200_images_is_answered_and_the_tier_scales_out_and_back_in(
        service: HttpService, frames: list[tuple[Path, str]]) -> None:
    with service.client() as client:
        outs_before = service.metric(client, "facereel_autoscaler_decisions_total",
                                     'action="scale_out"')
        ins_before = service.metric(client, "facereel_autoscaler_decisions_total",
                                    'action="scale_in"')
        seen: list[int] = []
        done = threading.Event()

        def watch() -> None:
            with service.client() as watcher:
                while not done.wait(0.2):
                    seen.append(_app_workers(watcher))

        thread = threading.Thread(target=watch)
        thread.start()
        started = time.perf_counter()
        try:
            results = asyncio.run(_burst(service.url, service.api_key, frames))
        finally:
            done.set()
            thread.join()
        wall = time.perf_counter() - started
        wrong = [(status, text, expected) for _, status, text, expected in results
                 if status != 200 or text != expected]
        assert not wrong, wrong[:5]
        latencies = sorted(r[0] for r in results)
        report = {"requests": BURST, "wall_s": round(wall, 2),
                  "throughput_rps": round(BURST / wall, 1),
                  "p50_s": round(statistics.median(latencies), 3),
                  "p95_s": round(latencies[int(0.95 * (BURST - 1))], 3),
                  "max_app_workers": max(seen, default=0)}
        _keep(report)
        assert service.metric(client, "facereel_autoscaler_decisions_total",
                              'action="scale_out"') > outs_before, report
        assert max(seen, default=0) == 2, report
        deadline = time.monotonic() + 60
        while _app_workers(client) > 1:
            assert time.monotonic() < deadline, "the tier did not scale back in"
            time.sleep(0.3)
        assert service.metric(client, "facereel_autoscaler_decisions_total",
                              'action="scale_in"') > ins_before
    log = service.log.read_text(errors="replace")
    assert "autoscale scale_out" in log and "autoscale scale_in" in log


def _keep(report: dict[str, float | int]) -> None:
    """The load figures, printed and kept as a test artifact."""
    folder = Path(os.environ.get("FACEREEL_ARTIFACTS", REPO_ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "image-load.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"image tier load: {report}")


def _up(data_dir: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "FACEREEL_API_KEYS"}
    return subprocess.run([*FACEREEL, "up", "--data-dir", str(data_dir), *args],
                          env={**environment, **(env or {})}, capture_output=True, text=True,
                          timeout=120, check=False)


def test_an_open_api_refuses_a_public_address(tmp_path: Path) -> None:
    result = _up(tmp_path, "--host", "0.0.0.0", "--port", "18999", "--workers", "1")
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without API keys" in result.stderr


def test_a_taken_port_stops_up_with_a_clear_message(service: HttpService,
                                                    tmp_path: Path) -> None:
    result = _up(tmp_path, "--port", str(service.port), "--workers", "1")
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{service.port}" in result.stderr


def test_the_image_tier_over_sqs_and_s3(moto: MotoServer, cse546: Path,
                                        frames: list[tuple[Path, str]], tmp_path: Path) -> None:
    """The cloud wiring: images stored in S3, requests and answers on SQS queues (moto)."""
    suffix = uuid.uuid4().hex[:8]
    service = HttpService(tmp_path / "state", env={
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1", **s3_buckets(moto.endpoint, suffix),
        "FACEREEL_QUEUE_BACKEND": "sqs", "FACEREEL_SQS_ENDPOINT": moto.endpoint,
        "FACEREEL_QUEUE_PREFIX": f"img-{suffix}", "FACEREEL_APP_WORKERS_MAX": "1"})
    service.cli("provision")
    service.cli("gallery", "import", str(cse546 / "encoding"))
    service.start()
    try:
        service.wait_ready()
        with service.client() as client:
            for path, person in frames[::12]:
                answer = client.post("/v1/images",
                                     files={"inputFile": (path.name, path.read_bytes())})
                assert answer.text == f"{path.name}:{person}"
    finally:
        code = service.stop()
    assert code == 0
    sqs = boto3.client("sqs", endpoint_url=moto.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    names = {url.rsplit("/", 1)[1] for url in
             sqs.list_queues(QueueNamePrefix=f"img-{suffix}").get("QueueUrls", [])}
    assert f"img-{suffix}-images" in names
    assert any(name.startswith(f"img-{suffix}-images-reply-") for name in names)
    assert not (tmp_path / "state" / "buckets").exists(), "images went to S3, not to disk"


def _tier_instances(ec2: Any) -> int:
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": "tag:facereel-role", "Values": ["app-tier"]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]}])
    return sum(len(r["Instances"]) for page in pages for r in page["Reservations"])


def test_the_autoscaler_launches_and_terminates_ec2_app_instances(
        moto: MotoServer, cse546: Path, frames: list[tuple[Path, str]], tmp_path: Path) -> None:
    """app_tier=ec2: a backlog launches tagged instances (moto), a `facereel app-worker`
    process plays the booted instance and answers, and the idle tier is terminated."""
    suffix = uuid.uuid4().hex[:8]
    ec2 = boto3.client("ec2", endpoint_url=moto.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    assert _tier_instances(ec2) == 0
    service = HttpService(tmp_path / "state", env={
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1", **s3_buckets(moto.endpoint, suffix),
        "FACEREEL_QUEUE_BACKEND": "sqs", "FACEREEL_SQS_ENDPOINT": moto.endpoint,
        "FACEREEL_QUEUE_PREFIX": f"ec2-{suffix}", "FACEREEL_APP_TIER": "ec2",
        "FACEREEL_EC2_IMAGE_ID": ec2.describe_images()["Images"][0]["ImageId"],
        "FACEREEL_EC2_ENDPOINT": moto.endpoint, "FACEREEL_APP_WORKERS_MIN": "0",
        "FACEREEL_APP_WORKERS_MAX": "2", "FACEREEL_SCALE_IN_DELAY": "1"})
    service.cli("provision")
    service.cli("gallery", "import", str(cse546 / "encoding"))
    service.start()
    instance: subprocess.Popen[bytes] | None = None
    try:
        service.wait_log("HTTP API listening")
        asked = frames[::4]
        answers: list[list[tuple[float, int, str, str]]] = []
        burst = threading.Thread(target=lambda: answers.append(asyncio.run(
            _burst(service.url, service.api_key, asked, len(asked)))))
        burst.start()
        _wait_until(lambda: _tier_instances(ec2) == 2, "the backlog did not launch 2 instances")
        with (tmp_path / "instance.log").open("wb") as log:  # the booted instance's worker
            instance = subprocess.Popen([*FACEREEL, "app-worker", "--data-dir",
                                         str(service.data_dir)], env=service.env,
                                        stdout=log, stderr=subprocess.STDOUT)
        burst.join(timeout=180)
        assert [a[2] for a in answers[0]] == [a[3] for a in answers[0]]
        _wait_until(lambda: _tier_instances(ec2) == 0, "the idle tier was not terminated")
    finally:
        if instance is not None:
            instance.terminate()
            instance.wait(timeout=30)
        code = service.stop()
    assert code == 0
    assert "autoscale scale_in" in service.log.read_text()


def _wait_until(condition: Callable[[], bool], message: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)
