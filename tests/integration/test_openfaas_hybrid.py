"""The OpenFaaS deployment, hybrid, end to end on this machine: the handler folders of
deploy/openfaas served by a stand-in gateway (tests/support/openfaas_gateway.py, the template's
event/context/response contract), `facereel watch --invoke` as the bucket monitor, videos
uploaded to SeaweedFS (the Ceph stand-in), stage-1, gallery and results on moto's S3, people
and video rows in SQLite. The functions get their credentials and API keys only from secret
files, as in a cluster."""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO_ROOT
from tests.support.openfaas_gateway import GatewayProcess
from tests.support.pipeline import Pipeline
from tests.support.servers import MotoServer, SeaweedServer

KEY = "function-key"
FUNCTIONS = ("face-recognition", "face-recognition-http")


class Monitor:
    """`facereel watch --invoke URL` as a child process, stopped by its pid."""

    def __init__(self, state: Path, env: dict[str, str], url: str, key_file: Path,
                 log: Path) -> None:
        self.log = log
        handle = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "facereel", "watch", "--data-dir", str(state),
             "--invoke", url, "--invoke-key-file", str(key_file)],
            env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _without_credentials(env: dict[str, str]) -> dict[str, str]:
    """The environment minus anything that could hold storage settings or credentials."""
    return {k: v for k, v in env.items() if not k.startswith(("FACEREEL_", "AWS_", "S3_",
                                                              "CEPH_", "ACCESS_", "SECRET_"))}


def deployment(seaweed: SeaweedServer, moto: MotoServer, root: Path) -> dict[str, str]:
    """Where everything lives (no credentials): input on SeaweedFS, the rest on moto."""
    suffix = uuid.uuid4().hex[:8]
    return {"FACEREEL_INPUT__BACKEND": "s3", "FACEREEL_INPUT__ENDPOINT": seaweed.endpoint,
            "FACEREEL_INPUT__NAME": f"input-{suffix}",
            "FACEREEL_STAGE1__BACKEND": "s3", "FACEREEL_STAGE1__ENDPOINT": moto.endpoint,
            "FACEREEL_STAGE1__NAME": f"stage-1-{suffix}",
            "FACEREEL_OUTPUT__BACKEND": "s3", "FACEREEL_OUTPUT__ENDPOINT": moto.endpoint,
            "FACEREEL_OUTPUT__NAME": f"output-{suffix}", "FACEREEL_AWS_REGION": "us-east-1",
            "FACEREEL_METADATA_DB": str(root / "facereel.db")}


def credentials(seaweed: SeaweedServer) -> dict[str, str]:
    """OpenFaaS secret name -> value (the CLI gets the same as FACEREEL_* variables)."""
    return {"facereel-input-access-key": seaweed.access_key,
            "facereel-input-secret-key": seaweed.secret_key,
            "facereel-aws-access-key": "testing", "facereel-aws-secret-key": "testing"}


def as_variables(secrets: dict[str, str]) -> dict[str, str]:
    names = {"facereel-input-access-key": "FACEREEL_INPUT__ACCESS_KEY",
             "facereel-input-secret-key": "FACEREEL_INPUT__SECRET_KEY",
             "facereel-aws-access-key": "FACEREEL_AWS_ACCESS_KEY",
             "facereel-aws-secret-key": "FACEREEL_AWS_SECRET_KEY"}
    return {names[name]: value for name, value in secrets.items()}


def clip_mapping(cse546: Path, tmp_path: Path) -> Path:
    """The grader's mapping lines of the 8 clips (the file also grades 100 re-encodings)."""
    clips = {p.name for p in (cse546 / "videos").glob("*.mp4")}
    lines = [line for line in (cse546 / "mapping").read_text().splitlines()
             if line.partition(":")[0] in clips]
    path = tmp_path / "mapping"
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_for(condition: Any, what: str, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s")


def invoked_seconds(log: Path) -> list[float]:
    """Per-invocation wall times the monitor logged (one video through the function each)."""
    return [float(m) for m in re.findall(r"invoked .* seconds=([0-9.]+)", log.read_text())]


@pytest.mark.slow
def test_monitor_invokes_the_function_for_every_upload_hybrid(
        seaweed: SeaweedServer, moto: MotoServer, cse546: Path, tmp_path: Path) -> None:
    where = deployment(seaweed, moto, tmp_path)
    secrets = credentials(seaweed)
    folder = tmp_path / "secrets"
    folder.mkdir()
    for name, value in {**secrets, "facereel-api-keys": f"{KEY}\nother-key\n"}.items():
        (folder / name).write_text(value + "\n")
    base = _without_credentials(dict(os.environ))
    cli_env = {**base, **where, **as_variables(secrets), "FACEREEL_POLL_INTERVAL": "0.3",
               "FACEREEL_SETTLE": "0", "FACEREEL_RETRY_BACKOFF": "0.2", "FACEREEL_PORT": "0"}
    pipeline = Pipeline(tmp_path / "state", cli_env)
    pipeline.env = cli_env  # exactly these settings, nothing from the session's environment
    pipeline.prepare(cse546)  # provision, the gallery into stage-1, people into SQLite

    gateway = GatewayProcess(
        tmp_path / "gateway",
        {name: REPO_ROOT / "deploy" / "openfaas" / name for name in FUNCTIONS},
        {**base, **where, "FACEREEL_OPENFAAS_SECRETS": str(folder),
         "FACEREEL_DATA_DIR": str(tmp_path / "function"), "FACEREEL_LOG_LEVEL": "INFO"})
    key_file = tmp_path / "invoke-key"
    key_file.write_text(KEY + "\n")
    with gateway:
        monitor = Monitor(tmp_path / "state", cli_env, f"{gateway.url}/function/face-recognition",
                          key_file, tmp_path / "monitor.log")
        try:
            pipeline.cli("workload", str(cse546 / "videos"))
            wait_for(lambda: len(invoked_seconds(monitor.log)) >= 8, "8 invocations")
        finally:
            monitor.stop()
        assert pipeline.cli("grade", "--mapping", str(clip_mapping(cse546, tmp_path)),
                            "--students", str(cse546 / "student_data.json")
                            ).stdout.strip() == "8/8"
        _check_refusals_and_on_demand(gateway.url, where)
        _check_async_through_the_monitor(pipeline, gateway, cli_env, key_file, cse546, tmp_path)
    seconds = invoked_seconds(monitor.log)
    _write_figures(seconds[:8])
    function_log = gateway.log_path.read_text()
    assert "Traceback" not in function_log
    ids = set(re.findall(r"invoked .* correlation_id=([0-9a-f]+)", monitor.log.read_text()))
    assert len(ids) == 8 and all(f"correlation_id={i}" in function_log for i in ids), \
        "the monitor's and the function's lines about a video carry the same id"


def _post(url: str, body: Any, key: str | None = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=data, headers=headers, timeout=120)


def _check_refusals_and_on_demand(url: str, where: dict[str, str]) -> None:
    bucket = where["FACEREEL_INPUT__NAME"]
    request = {"bucket": bucket, "key": "test_7.mp4"}
    for name in FUNCTIONS:
        target = f"{url}/function/{name}"
        for key in (None, "wrong"):
            answer = _post(target, request, key)
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"]["code"] == "unauthorized"
        refusals = [({"bucket": "elsewhere", "key": "test_7.mp4"}, 404, "unknown_bucket"),
                    (b'{"bucket": ', 400, "invalid_request"),
                    ({**request, "extra": 1}, 400, "invalid_request"),
                    ({"bucket": bucket, "key": "missing.mp4"}, 404, "object_not_found")]
        for body, status, code in refusals:
            answer = _post(target, body)
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
    on_demand = _post(f"{url}/function/face-recognition-http", request)
    assert on_demand.status_code == 200
    assert on_demand.json()["people"][0]["person"] == "morgan_freeman"


def _check_async_through_the_monitor(pipeline: Pipeline, gateway: GatewayProcess,
                                     env: dict[str, str], key_file: Path, cse546: Path,
                                     tmp_path: Path) -> None:
    """The same cursor, now invoking /async-function/: only the new upload is handed over,
    taken on the gateway's 202, and its result appears once the queue-worker ran it."""
    later = tmp_path / "later"
    later.mkdir()
    (later / "test_4.mp4").symlink_to(cse546 / "videos" / "test_4.mp4")
    monitor = Monitor(tmp_path / "state", env, f"{gateway.url}/async-function/face-recognition",
                      key_file, tmp_path / "monitor-async.log")
    try:
        pipeline.cli("workload", str(later), "--prefix", "later/")
        wait_for(lambda: "async face-recognition -> 200" in gateway.log_path.read_text(),
                 "the queued call")
    finally:
        monitor.stop()
    log = monitor.log.read_text()
    assert log.count("invoked ") == 1 and ": 202" in log and "later/test_4.mp4" in log
    doc = _post(f"{gateway.url}/function/face-recognition-http",
                {"bucket": env["FACEREEL_INPUT__NAME"], "key": "later/test_4.mp4"}).json()
    assert doc["people"][0]["person"] == "johnny_dep"


def _write_figures(seconds: list[float]) -> None:
    folder = Path(os.environ.get("FACEREEL_ARTIFACTS", REPO_ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    figures = {"videos": len(seconds), "median_s": statistics.median(seconds),
               "max_s": max(seconds), "each_s": seconds}
    (folder / "openfaas-hybrid.json").write_text(json.dumps(figures, indent=1))
