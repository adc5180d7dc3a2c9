"""The same pipeline, unchanged, against real S3-compatible storage (SeaweedFS) and against
AWS services emulated by moto (S3 with event notifications to SQS, SQS queues, DynamoDB)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.conftest import CLIP_PEOPLE
from tests.integration.test_pipeline_local import grade, workload_folder
from tests.support.pipeline import Pipeline, s3_buckets
from tests.support.servers import MotoServer, SeaweedServer


@pytest.mark.slow
def test_workload_on_seaweedfs(seaweed: SeaweedServer, cse546: Path, tmp_path: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": seaweed.access_key, "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
           **s3_buckets(seaweed.endpoint, uuid.uuid4().hex[:8])}
    pipeline = Pipeline(tmp_path / "state", env)
    pipeline.prepare(cse546)
    pipeline.start()
    try:
        pipeline.cli("workload", str(workload_folder(cse546, tmp_path / "w")))
        status = pipeline.wait_done(100)
    finally:
        code = pipeline.stop()
    assert code == 0
    assert status["videos"] == {"done": 100} and status["dead_letters"] == 0
    assert grade(pipeline, cse546) == "100/100"
    assert not (tmp_path / "state" / "buckets").exists(), "nothing was written locally"


def test_aws_services_with_s3_events(moto: MotoServer, cse546: Path, clips: dict[str, Path],
                                     tmp_path: Path) -> None:
    """S3 -> SQS notifications drive the watcher; stage queues on SQS, metadata on DynamoDB."""
    suffix = uuid.uuid4().hex[:8]
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1", **s3_buckets(moto.endpoint, suffix),
           "FACEREEL_QUEUE_BACKEND": "sqs", "FACEREEL_SQS_ENDPOINT": moto.endpoint,
           "FACEREEL_QUEUE_PREFIX": f"fr-{suffix}", "FACEREEL_EVENTS_QUEUE": f"events-{suffix}",
           "FACEREEL_METADATA_BACKEND": "dynamodb", "FACEREEL_DYNAMODB_ENDPOINT": moto.endpoint,
           "TABLE_NAME": f"students-{suffix}", "FACEREEL_VIDEOS_TABLE": f"videos-{suffix}",
           "FACEREEL_WINDOWS_TABLE": f"windows-{suffix}",
           "FACEREEL_PERSON_VIDEOS_TABLE": f"person-videos-{suffix}",
           "FACEREEL_FACES_TABLE": f"faces-{suffix}",
           "FACEREEL_POLL_INTERVAL": "30"}  # polling would take 30 s: only events can be this fast
    pipeline = Pipeline(tmp_path / "state", env)
    pipeline.prepare(cse546)
    pipeline.start()
    try:
        pipeline.wait_log("facereel is up")  # provisioned: the bucket notifies the queue
        folder = tmp_path / "upload"
        folder.mkdir()
        for clip in ("test_2", "test_8"):
            (folder / f"{clip} copy.mp4").symlink_to(clips[clip])
        pipeline.cli("workload", str(folder))
        status = pipeline.wait_done(2, timeout_s=25)
    finally:
        pipeline.stop()
    assert status["videos"] == {"done": 2}
    assert "queued 1 new uploads from S3 events" in pipeline.log.read_text()
    result = pipeline.cli("grade", "--mapping", str(_mapping(tmp_path)),
                          "--students", str(cse546 / "student_data.json"))
    assert result.stdout.strip() == "2/2"
    people = json.loads(pipeline.cli("metadata", "list").stdout.splitlines()[0])
    assert people["name"] and "major" in people, "people records live in DynamoDB"
    for clip in ("test_2", "test_8"):  # found by person through the DynamoDB indexes
        found = pipeline.cli("results", "--person", CLIP_PEOPLE[clip], "--json").stdout
        assert [json.loads(line)["key"] for line in found.splitlines()] == [f"{clip} copy.mp4"]
    listed = [json.loads(line) for line in pipeline.cli("videos", "--json").stdout.splitlines()]
    assert sorted(r["key"] for r in listed) == ["test_2 copy.mp4", "test_8 copy.mp4"]


def _mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping"
    path.write_text("test_2 copy.mp4:lawyer,freshmen\ntest_8 copy.mp4:electrical_engineering,"
                    "senior\n")
    return path
