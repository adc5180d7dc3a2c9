"""The install the Lambda image performs (deploy/aws/install.sh: `pip install --target` of
facereel[aws], then `facereel models prepare`), done into a folder on this machine (the same
platform: x86_64 Linux, CPython 3.11, glibc >= 2.28), and the handler run from that folder
under awslambdaric with the whole file system read-only but /tmp, as Lambda runs it. Root
ignores file modes, so the read-only part is real mounts: a private mount namespace
(`unshare`) where / is remounted read-only and /tmp is a writable bind mount."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from facereel.pipeline.definition import STAGE_NAMES
from facereel.ports.objectstore.s3 import make_s3_client
from facereel.ports.queue.sqs import make_sqs_client
from tests.conftest import CLIP_PEOPLE, REPO_ROOT
from tests.integration.test_lambda_remote import aws_env
from tests.support.aws_shapes import s3_event, s3_record
from tests.support.esm import EventSourceMapping, drain
from tests.support.lambda_runtime import LambdaFunction
from tests.support.pipeline import Pipeline, s3_buckets
from tests.support.servers import MotoServer

INSTALL = REPO_ROOT / "deploy" / "aws" / "install.sh"
READ_ONLY = 'mount --bind /tmp /tmp && mount -o remount,bind,ro / && exec "$@"'
SANDBOX = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", READ_ONLY, "sh"]


@pytest.fixture(scope="module")
def installed() -> Iterator[tuple[Path, Path, float]]:
    """(task folder, models folder, seconds the install took)."""
    if shutil.which("unshare") is None or subprocess.run(
            [*SANDBOX, "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no private mount namespaces here (unshare)")
    # not under /tmp, which stays writable: /var/task is read-only on Lambda
    root = Path(tempfile.mkdtemp(prefix="facereel-lambda-", dir="/var/tmp"))
    try:
        started = time.monotonic()
        done = subprocess.run(["sh", str(INSTALL), str(REPO_ROOT), str(root / "task"),
                               str(root / "models")], env={"PATH": "/usr/bin:/bin",
                                                          "PYTHON": sys.executable,
                                                          "HOME": str(Path.home())},
                              capture_output=True, text=True, check=False, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        yield root / "task", root / "models", time.monotonic() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_sandbox_is_read_only_but_tmp(installed: tuple[Path, Path, float]) -> None:
    task, _, _ = installed
    probe = f"touch {task}/x 2>/dev/null && echo task-writable; touch /tmp/facereel-probe " \
            "&& rm /tmp/facereel-probe && echo tmp-writable"
    done = subprocess.run([*SANDBOX, "sh", "-c", probe], capture_output=True, text=True,
                          check=False)
    assert done.stdout.split() == ["tmp-writable"]


@pytest.mark.slow
def test_the_installed_handler_runs_read_only(installed: tuple[Path, Path, float],
                                              moto: MotoServer, cse546: Path,
                                              clips: dict[str, Path], tmp_path: Path) -> None:
    task, models, install_s = installed
    print(f"install into {task}: {install_s:.1f} s")
    suffix = uuid.uuid4().hex[:8]
    env = {**aws_env(moto, suffix), **s3_buckets(moto.endpoint, suffix)}
    Pipeline(tmp_path / "admin", env).prepare(cse546)
    s3 = make_s3_client(moto.endpoint, "us-east-1", "testing", "testing")
    sqs = make_sqs_client(moto.endpoint, "us-east-1", "testing", "testing")
    function_env = {**env, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(task), "HOME": str(task),
                    "PYTHONDONTWRITEBYTECODE": "1", "FACEREEL_CACHE_DIR": str(models),
                    "FACEREEL_DATA_DIR": "/tmp/facereel"}
    function = LambdaFunction(tmp_path / "functions", f"fr-{suffix}-all", function_env,
                              python=[*SANDBOX, sys.executable, "-S"])
    with function:
        s3.upload_file(str(clips["test_4"]), f"input-{suffix}", "test_4 clip.mp4")
        etag = s3.head_object(Bucket=f"input-{suffix}", Key="test_4 clip.mp4")["ETag"]
        started = function.invoke(s3_event(s3_record(f"input-{suffix}", "test_4 clip.mp4",
                                                     etag.strip('"'))))
        assert started.ok, started.payload
        mappings = [EventSourceMapping(sqs, f"fr-{suffix}-{stage}", function)
                    for stage in STAGE_NAMES]
        drain(mappings, lambda: "test_4 clip.mp4.json" in {
            o["Key"] for o in s3.list_objects_v2(Bucket=f"output-{suffix}").get("Contents", [])})
    document = s3.get_object(Bucket=f"output-{suffix}", Key="test_4 clip.mp4.json")[
        "Body"].read()
    assert json.loads(document)["people"][0]["person"] == CLIP_PEOPLE["test_4"]
    log = function.log_path.read_text()
    assert "Read-only file system" not in log and "cannot take it" not in log, log[-2000:]
    assert sorted(p.name for p in models.iterdir()) == [
        p.name for p in sorted(models.glob("*.onnx"))], "the model cache was only read"
