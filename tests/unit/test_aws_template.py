"""deploy/aws/template.yaml: valid once translated (aws-sam-translator, then cfn-lint; a broken
copy fails), and holding what `facereel provision` plans for the same names (queues with their
dead letters and redrive, tables, buckets, the upload notification), plus one function per
stage fed by its queue with partial batch responses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from samtranslator.model.exceptions import InvalidDocumentException

from facereel.config.sections import StorageSettings
from facereel.pipeline.definition import STAGES
from facereel.pipeline.infra import plan
from facereel.ports.metadata.dynamo_schema import TableSpec
from tests.support import cfn


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn.load()


def test_the_template_translates_and_lints_clean(template: dict[str, Any]) -> None:
    translated = cfn.translate(template)
    assert cfn.lint(translated) == []
    kinds = {r["Type"] for r in translated["Resources"].values()}
    assert {"AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping",
            "AWS::Lambda::EventInvokeConfig"} <= kinds


@pytest.mark.parametrize(("good", "bad"), [
    ("BatchSize: 1\n", "BatchSize: ten\n"),  # a wrong type in a SAM event
    ("[ReportBatchItemFailures]", "[ReportBatchFailures]"),  # a wrong value
    ("Type: AWS::SQS::Queue", "Type: AWS::SQS::Queues"),  # a resource type that does not exist
])
def test_a_broken_copy_fails_the_check(tmp_path: Path, good: str, bad: str) -> None:
    broken = tmp_path / "template.yaml"
    broken.write_text(cfn.TEMPLATE.read_text().replace(good, bad, 1))
    try:
        problems = cfn.lint(cfn.translate(cfn.load(broken)))
    except InvalidDocumentException as exc:
        problems = [str(exc)]
    assert problems, f"{bad!r} went unnoticed"


def _storage(resolved: cfn.Resolved) -> StorageSettings:
    """The settings the template gives its functions, as `facereel provision` would read."""
    p = resolved.params
    on_aws = resolved.conditions["InputOnAws"]
    return StorageSettings(
        input={"name": p["InputBucketName"], "backend": "s3",
               "endpoint": p["InputEndpoint"] or None},
        stage1={"name": p["Stage1BucketName"], "backend": "s3"},
        output={"name": p["OutputBucketName"], "backend": "s3"},
        queue_backend="sqs", queue_prefix=p["Prefix"], visibility=float(p["VisibilityTimeout"]),
        max_attempts=int(p["MaxAttempts"]), metadata_backend="dynamodb",
        table_name=p["PeopleTableName"], videos_table=p["VideosTableName"],
        windows_table=p["WindowsTableName"], person_videos_table=p["PersonVideosTableName"],
        faces_table=p["FacesTableName"],
        events_queue=p["EventsQueueName"] if on_aws else None)


def check_table(table: dict[str, Any], spec: TableSpec) -> None:
    """The table's keys, attribute types and indexes are the ones DynamoMetadata queries."""
    assert table["KeySchema"] == spec.key_schema()
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        spec.attribute_definitions(), key=str)
    for kind, indexes in (("GlobalSecondaryIndexes", spec.global_indexes()),
                          ("LocalSecondaryIndexes", spec.local_indexes())):
        assert table.get(kind, []) == [index.create_shape() for index in indexes], kind


def _on_aws(resources: list[Any], storage: StorageSettings) -> list[Any]:
    """A bucket on another endpoint (Ceph) is provisioned there, not by the template."""
    return [r for r in resources if not (r.kind == "bucket" and storage.bucket(
        r.properties["bucket"]).endpoint)]


@pytest.mark.parametrize("parameters", [{}, {"InputEndpoint": "http://ceph.example:7480",
                                             "Prefix": "fr", "MaxAttempts": "3"}])
def test_the_template_holds_what_provision_plans(template: dict[str, Any],
                                                 parameters: dict[str, str]) -> None:
    resolved = cfn.Resolved(template, parameters)
    storage = _storage(resolved)
    wanted = _on_aws(plan(storage), storage)
    queues = {q["QueueName"]: q for q in resolved.of_type("AWS::SQS::Queue").values()}
    tables = {t["TableName"]: t for t in resolved.of_type("AWS::DynamoDB::Table").values()}
    every_bucket = {b["BucketName"]: b for b in resolved.of_type("AWS::S3::Bucket").values()}
    buckets = dict(every_bucket)
    for resource in wanted:
        if resource.kind == "queue":
            queue = queues.pop(resource.name)
            props = resource.properties
            if "dead_letter_of" in props:
                assert queue["MessageRetentionPeriod"] == 1209600
            elif "visibility_timeout" in props:
                assert int(queue["VisibilityTimeout"]) == props["visibility_timeout"]
                assert queue["RedrivePolicy"] == {
                    "deadLetterTargetArn": f"arn:aws:sqs:{cfn.REGION}:{cfn.ACCOUNT}:"
                                           f"{props['dead_letter_queue']}",
                    "maxReceiveCount": str(props["max_receive_count"])}
        elif resource.kind == "table":
            check_table(tables.pop(resource.name), resource.properties["spec"])
        elif resource.kind == "bucket":
            buckets.pop(resource.name)
        else:  # the input bucket's upload notification to the events queue
            rules = every_bucket[resource.properties["bucket"]]["NotificationConfiguration"]
            assert rules["QueueConfigurations"] == [{
                "Event": "s3:ObjectCreated:*",
                "Queue": f"arn:aws:sqs:{cfn.REGION}:{cfn.ACCOUNT}:{resource.name}"}]
    assert (queues, tables, buckets) == ({}, {}, {}), "nothing the plan lacks"


def test_one_function_per_stage_fed_by_its_queue(template: dict[str, Any]) -> None:
    resolved = cfn.Resolved(template)
    prefix = resolved.params["Prefix"]
    functions = {f["FunctionName"]: f
                 for f in resolved.of_type("AWS::Serverless::Function").values()}
    assert set(functions) == {f"{prefix}-{s.name}" for s in STAGES} | {
        f"{prefix}-ingest", f"{prefix}-memory-index"}
    for stage in STAGES:
        function = functions[f"{prefix}-{stage.name}"]
        assert function["Environment"]["Variables"] == {"FACEREEL_STAGE": stage.name}
        (event,) = function["Events"].values()
        assert event["Type"] == "SQS" and event["Properties"]["Enabled"] is True
        assert event["Properties"]["Queue"].endswith(f":{prefix}-{stage.name}")
        assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert function["EventInvokeConfig"]["DestinationConfig"]["OnFailure"][
            "Destination"].endswith(f":{prefix}-{stage.name}-dead")
    hybrid = cfn.Resolved(template, {"InputEndpoint": "http://ceph.example:7480"})
    names = {f["FunctionName"] for f in hybrid.of_type("AWS::Serverless::Function").values()}
    assert f"{prefix}-poller" in names and f"{prefix}-ingest" not in names


def test_the_face_index_has_one_scheduled_writer(template: dict[str, Any]) -> None:
    """The snapshot is written by one function at a time, on a schedule, as a task payload
    the handler knows."""
    from facereel.deploy.aws_events import kind, task_name

    resolved = cfn.Resolved(template)
    (function,) = [f for f in resolved.of_type("AWS::Serverless::Function").values()
                   if f["FunctionName"].endswith("-memory-index")]
    assert function["ReservedConcurrentExecutions"] == 1
    (event,) = function["Events"].values()
    assert event["Type"] == "Schedule"
    payload = json.loads(event["Properties"]["Input"])
    assert kind(payload) == "task" and task_name(payload) == "memory-index"



def test_each_function_may_send_where_its_stage_sends(template: dict[str, Any]) -> None:
    """Every `next` of a stage in `STAGES` is allowed to its function's role, in queue mode
    (SendMessage to the next stage's queue) and chain mode (InvokeFunction of its function):
    a stage that gains a next stage cannot be denied it by a stale template."""
    for mode in ("queue", "chain"):
        resolved = cfn.Resolved(template, {"InvokeMode": mode})
        prefix = resolved.params["Prefix"]
        roles = resolved.of_type("AWS::IAM::Role")
        for stage in STAGES:
            role = roles[f"{stage.name.capitalize()}Role"]
            statements = [s for policy in role["Policies"]
                          for s in policy["PolicyDocument"]["Statement"]
                          if isinstance(s, dict)]
            for target in stage.next:
                if mode == "queue":
                    action = "sqs:SendMessage"
                    arn = f"arn:aws:sqs:{cfn.REGION}:{cfn.ACCOUNT}:{prefix}-{target}"
                else:
                    action = "lambda:InvokeFunction"
                    arn = f"arn:aws:lambda:{cfn.REGION}:{cfn.ACCOUNT}:function:{prefix}-{target}"
                assert cfn.allows(statements, action, arn), (mode, stage.name, target)
