"""`facereel provision` on AWS services emulated by moto: everything the plan names is created
once (a second run finds it as it should be), a drifted queue is reported (and fixed only when
asked), another consumer's notification rule on the input bucket is kept, and hosts never
create anything: a missing resource is a one-line error naming `facereel provision`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from facereel.ports import aws_resources as aws
from facereel.ports.metadata.dynamo_schema import KeyAttribute, TableSpec
from facereel.ports.objectstore.s3 import make_s3_client
from facereel.ports.queue.sqs import make_sqs_client
from tests.support.pipeline import Pipeline, s3_buckets
from tests.support.servers import MotoServer


def moto_env(moto: MotoServer, suffix: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1", **s3_buckets(moto.endpoint, suffix),
            "FACEREEL_QUEUE_BACKEND": "sqs", "FACEREEL_SQS_ENDPOINT": moto.endpoint,
            "FACEREEL_QUEUE_PREFIX": f"fr-{suffix}", "FACEREEL_EVENTS_QUEUE": f"events-{suffix}",
            "FACEREEL_METADATA_BACKEND": "dynamodb", "FACEREEL_DYNAMODB_ENDPOINT": moto.endpoint,
            "FACEREEL_TABLE_NAME": f"people-{suffix}", "FACEREEL_VIDEOS_TABLE": f"videos-{suffix}",
            "FACEREEL_WINDOWS_TABLE": f"windows-{suffix}",
            "FACEREEL_PERSON_VIDEOS_TABLE": f"person-videos-{suffix}",
            "FACEREEL_FACES_TABLE": f"faces-{suffix}", "FACEREEL_VISIBILITY": "60"}


def provision(pipeline: Pipeline, *extra: str) -> tuple[int, list[dict[str, str]]]:
    result = pipeline.cli("provision", "--json", *extra, check=False)
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def deployment(moto: MotoServer, tmp_path: Path) -> tuple[Pipeline, str]:
    suffix = uuid.uuid4().hex[:8]
    return Pipeline(tmp_path / "state", moto_env(moto, suffix)), suffix


def test_provision_creates_the_plan_once(deployment: tuple[Pipeline, str]) -> None:
    pipeline, suffix = deployment
    code, first = provision(pipeline)
    assert code == 0, first
    assert {(o["kind"], o["state"]) for o in first} == {
        ("bucket", "created"), ("queue", "created"), ("table", "created"),
        ("notification", "created")}
    names = {o["name"] for o in first}
    for stage in ("split", "analyze", "recognize", "publish", "images"):
        assert {f"fr-{suffix}-{stage}", f"fr-{suffix}-{stage}-dead"} <= names
    assert {f"input-{suffix}", f"stage-1-{suffix}", f"output-{suffix}", f"people-{suffix}",
            f"videos-{suffix}", f"windows-{suffix}", f"person-videos-{suffix}",
            f"faces-{suffix}", f"events-{suffix}"} <= names
    code, again = provision(pipeline)
    assert code == 0 and {o["state"] for o in again} == {"exists"}, again
    assert [o["name"] for o in again] == [o["name"] for o in first]


def test_a_drifted_queue_is_reported_and_fixed_only_when_asked(
        deployment: tuple[Pipeline, str], moto: MotoServer) -> None:
    pipeline, suffix = deployment
    assert provision(pipeline)[0] == 0
    sqs = make_sqs_client(moto.endpoint, "us-east-1", "testing", "testing")
    url = sqs.get_queue_url(QueueName=f"fr-{suffix}-publish")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "7"})
    code, outcomes = provision(pipeline)
    drifted = [o for o in outcomes if o["state"] == "different"]
    assert code == 1 and [o["name"] for o in drifted] == [f"fr-{suffix}-publish"]
    assert "VisibilityTimeout is '7', should be '60'" in drifted[0]["detail"]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])[
        "Attributes"]["VisibilityTimeout"] == "7", "reporting changes nothing"
    code, fixed = provision(pipeline, "--fix")
    assert code == 0 and "updated" in next(o["detail"] for o in fixed
                                           if o["name"] == f"fr-{suffix}-publish")
    assert provision(pipeline)[0] == 0


def test_another_notification_rule_of_the_bucket_is_kept(
        deployment: tuple[Pipeline, str], moto: MotoServer) -> None:
    pipeline, suffix = deployment
    s3 = make_s3_client(moto.endpoint, "us-east-1", "testing", "testing")
    sqs = make_sqs_client(moto.endpoint, "us-east-1", "testing", "testing")
    s3.create_bucket(Bucket=f"input-{suffix}")
    other = sqs.create_queue(QueueName=f"thumbnails-{suffix}")["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    theirs = {"Id": "thumbnailer", "QueueArn": other_arn, "Events": ["s3:ObjectCreated:*"],
              "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".jpg"}]}}}
    s3.put_bucket_notification_configuration(
        Bucket=f"input-{suffix}", NotificationConfiguration={"QueueConfigurations": [theirs]})
    for _ in range(2):  # and again: idempotent
        assert provision(pipeline)[0] == 0
    rules = _rules(s3, f"input-{suffix}")
    assert len(rules) == 2 and rules["thumbnailer"]["QueueArn"] == other_arn
    ours = [r for name, r in rules.items() if name != "thumbnailer"]
    assert ours[0]["QueueArn"].endswith(f":events-{suffix}")


def _rules(s3: Any, bucket: str) -> dict[str, dict[str, Any]]:
    config = s3.get_bucket_notification_configuration(Bucket=bucket)
    return {r["Id"]: r for r in config.get("QueueConfigurations", [])}


def test_hosts_never_create_infrastructure(deployment: tuple[Pipeline, str],
                                           moto: MotoServer) -> None:
    pipeline, suffix = deployment
    status = pipeline.cli("status", check=False)
    assert status.returncode != 0
    lines = [line for line in status.stderr.splitlines() if line.strip()]
    assert len(lines) <= 2 and "facereel provision" in status.stderr, status.stderr
    s3 = make_s3_client(moto.endpoint, "us-east-1", "testing", "testing")
    buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    assert not any(suffix in name for name in buckets), "nothing was created"


def test_a_videos_table_of_an_earlier_release_gets_its_index(
        deployment: tuple[Pipeline, str], moto: MotoServer) -> None:
    """Tables provisioned before listings existed: the videos table lacks by-status. It is
    reported (listing says what to run), added with --fix, and then lists the rows already
    there; the new person-videos table is filled from them, so old results are found by
    person."""
    pipeline, suffix = deployment
    dynamo = boto3.client("dynamodb", endpoint_url=moto.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    videos = f"videos-{suffix}"
    aws.ensure_table(dynamo, videos, TableSpec(KeyAttribute("key")))  # as it was
    dynamo.put_item(TableName=videos, Item={
        "key": {"S": "old.mp4"}, "etag": {"S": "e"}, "status": {"S": "done"},
        "updated": {"N": "978307200.5"}, "people": {"L": [{"S": "ada"}]}})
    code, outcomes = provision(pipeline)
    [table] = [o for o in outcomes if o["name"] == videos]
    assert code == 1 and table["state"] == "different", table
    [people] = [o for o in outcomes if o["name"] == f"person-videos-{suffix}"]
    assert (people["state"], people["detail"]) == ("created", f"1 item from the rows of {videos}")
    assert "by-status is missing" in table["detail"] and "--fix" in table["detail"]
    listing = pipeline.cli("videos", check=False)
    assert listing.returncode == 2 and "facereel provision --fix" in listing.stderr
    assert len(listing.stderr.strip().splitlines()) == 1, listing.stderr
    code, fixed = provision(pipeline, "--fix")
    assert code == 0 and "added index by-status" in next(
        o["detail"] for o in fixed if o["name"] == videos)
    rows = [json.loads(line) for line in pipeline.cli("videos", "--json").stdout.splitlines()]
    assert [(r["key"], r["status"], r["updated"]) for r in rows] == [
        ("old.mp4", "done", "2001-01-01T00:00:00.500Z")]
    found = pipeline.cli("results", "--person", "ada", "--json").stdout.splitlines()
    assert [json.loads(line)["key"] for line in found] == ["old.mp4"]
    assert provision(pipeline)[0] == 0
