"""Create (or check) the AWS resources a deployment needs: buckets, queues with their dead-letter
queue and redrive policy, DynamoDB tables, and a bucket's event notification to a queue.

Every `ensure_*` is idempotent and answers what it found: `created`, `exists` (as it should be)
or `different` (it exists but differs from the plan, with what differs). Only `facereel
provision` calls these: hosts never create infrastructure, so a Lambda or a worker needs no
Create* rights and no start-up calls.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from facereel.ports.aws import classify_boto_error
from facereel.ports.metadata.dynamo_schema import IndexSpec, TableSpec

DEAD_RETENTION_S = 1209600  # 14 days, the SQS maximum: dead letters wait for a person
_EXISTS = {"QueueAlreadyExists", "QueueNameExists", "AWS.SimpleQueueService.QueueNameExists"}


@dataclass(frozen=True, slots=True)
class Found:
    state: str  # created | exists | different
    detail: str = ""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# ---- buckets ---------------------------------------------------------------------------
def ensure_bucket(client: Any, bucket: str) -> Found:
    try:
        client.head_bucket(Bucket=bucket)
        return Found("exists")
    except ClientError as exc:
        if classify_boto_error(exc)[0] not in ("not_found", "no_container"):
            raise
    region = client.meta.region_name
    options: dict[str, Any] = {}
    if region and region != "us-east-1":
        options["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(Bucket=bucket, **options)
    except ClientError as exc:
        if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
        return Found("exists")
    return Found("created")


# ---- queues ----------------------------------------------------------------------------
def queue_url(client: Any, name: str) -> str | None:
    try:
        return str(client.get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError as exc:
        if classify_boto_error(exc)[0] in ("no_container", "not_found"):
            return None
        raise


def queue_arn(client: Any, url: str) -> str:
    response = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(response["Attributes"]["QueueArn"])


def _differences(client: Any, url: str, wanted: dict[str, str]) -> list[str]:
    current = client.get_queue_attributes(QueueUrl=url, AttributeNames=list(wanted))
    have = current.get("Attributes", {})
    found = []
    for name, value in wanted.items():
        mine = have.get(name)
        same = (json.loads(mine) == json.loads(value)) if name == "RedrivePolicy" and mine \
            else mine == value
        if not same:
            found.append(f"{name} is {mine!r}, should be {value!r}")
    return found


def ensure_queue(client: Any, name: str, attributes: dict[str, str], fix: bool = False) -> Found:
    """The queue with these attributes; an existing queue's differing attributes are
    reported (and set when `fix`)."""
    url = queue_url(client, name)
    if url is None:
        try:
            client.create_queue(QueueName=name, Attributes=attributes)
            return Found("created")
        except ClientError as exc:
            if _code(exc) not in _EXISTS:
                raise
            url = queue_url(client, name)
            assert url is not None
    differences = _differences(client, url, attributes)
    if not differences:
        return Found("exists")
    if fix:
        client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        return Found("exists", "updated: " + "; ".join(differences))
    return Found("different", "; ".join(differences))


def stage_queue_attributes(client: Any, dead_letter: str, visibility_s: int,
                           max_receive_count: int) -> dict[str, str]:
    """Attributes of a stage queue: its visibility timeout and the redrive policy that moves a
    message to `dead_letter` (which must exist) after `max_receive_count` receives."""
    url = queue_url(client, dead_letter)
    if url is None:
        raise LookupError(f"dead-letter queue {dead_letter} does not exist")
    redrive = {"deadLetterTargetArn": queue_arn(client, url),
               "maxReceiveCount": max_receive_count}
    return {"VisibilityTimeout": str(visibility_s), "RedrivePolicy": json.dumps(redrive)}


DEAD_LETTER_ATTRIBUTES = {"MessageRetentionPeriod": str(DEAD_RETENTION_S)}


# ---- tables ----------------------------------------------------------------------------
def _keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in schema]


def ensure_table(client: Any, name: str, spec: TableSpec, fix: bool = False) -> Found:
    """A pay-per-request table with `spec`'s keys and indexes, waited for until usable. An
    existing table whose global index is missing gets it when `fix` (DynamoDB fills it from
    the rows already there); a different key schema or a missing local index cannot be
    changed in place and is reported."""
    try:
        table = client.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if classify_boto_error(exc)[0] != "no_container":
            raise
        return _create_table(client, name, spec)
    if _keys(table.get("KeySchema", [])) != _keys(spec.key_schema()):
        return Found("different", f"key schema is {_keys(table.get('KeySchema', []))}, "
                     f"should be {_keys(spec.key_schema())}")
    problems, missing = _index_differences(table, spec)
    if problems or not missing:
        return Found("different", "; ".join(problems)) if problems else Found("exists")
    names = ", ".join(index.name for index in missing)
    if not fix:
        return Found("different", f"index {names} is missing "
                     "(`facereel provision --fix` adds it)")
    for index in missing:  # UpdateTable creates one global index per call
        client.update_table(TableName=name,
                            AttributeDefinitions=spec.attribute_definitions((index,)),
                            GlobalSecondaryIndexUpdates=[{"Create": index.create_shape()}])
        _wait_for_index(client, name, index.name)
    return Found("exists", f"updated: added index {names}")


def _index_differences(table: dict[str, Any], spec: TableSpec
                       ) -> tuple[list[str], list[IndexSpec]]:
    """What cannot be fixed, and the global indexes that can be added."""
    have = {i["IndexName"]: i for i in [*table.get("GlobalSecondaryIndexes", []),
                                        *table.get("LocalSecondaryIndexes", [])]}
    problems: list[str] = []
    missing: list[IndexSpec] = []
    for index in spec.indexes:
        found = have.get(index.name)
        if found is None and index.local:
            problems.append(f"local index {index.name} is missing (only a new table can "
                            "have one: recreate the table)")
        elif found is None:
            missing.append(index)
        elif _keys(found.get("KeySchema", [])) != _keys(index.key_schema()):
            problems.append(f"index {index.name} has key {_keys(found['KeySchema'])}, "
                            f"should be {_keys(index.key_schema())}")
    return problems, missing


def _create_table(client: Any, name: str, spec: TableSpec) -> Found:
    options: dict[str, Any] = {}
    if spec.global_indexes():
        options["GlobalSecondaryIndexes"] = [i.create_shape() for i in spec.global_indexes()]
    if spec.local_indexes():
        options["LocalSecondaryIndexes"] = [i.create_shape() for i in spec.local_indexes()]
    try:
        client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                            KeySchema=spec.key_schema(),
                            AttributeDefinitions=spec.attribute_definitions(), **options)
    except ClientError as exc:
        if _code(exc) != "ResourceInUseException":
            raise
    client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return Found("created")


def _wait_for_index(client: Any, table: str, index: str, timeout_s: float = 1800.0) -> None:
    """Until the new index is ACTIVE: it is filled from every existing row first, which on a
    large table takes minutes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = client.describe_table(TableName=table)["Table"]
        status = next((i.get("IndexStatus") for i in described.get("GlobalSecondaryIndexes", [])
                       if i["IndexName"] == index), None)
        if status == "ACTIVE":
            return
        time.sleep(2.0)
    raise LookupError(f"index {index} of {table} is still being built; run "
                      "`facereel provision` again later")


# ---- bucket notifications ----------------------------------------------------------------
def _queue_policy(existing: str | None, statement: dict[str, Any]) -> str:
    """The queue's policy with our statement added (or replaced), others kept."""
    try:
        policy = json.loads(existing) if existing else {}
    except ValueError:
        policy = {}
    if not isinstance(policy, dict):
        policy = {}
    statements = [s for s in policy.get("Statement") or []
                  if not (isinstance(s, dict) and s.get("Sid") == statement["Sid"])]
    return json.dumps({"Version": policy.get("Version", "2012-10-17"),
                       "Statement": [*statements, statement]})


def allow_bucket(sqs_client: Any, queue_url_: str, bucket: str) -> str:
    """Let S3 (for this bucket only) send to the queue; returns the queue's ARN."""
    attributes = sqs_client.get_queue_attributes(
        QueueUrl=queue_url_, AttributeNames=["QueueArn", "Policy"])["Attributes"]
    arn = str(attributes["QueueArn"])
    statement = {"Sid": f"facereel-s3-{bucket}", "Effect": "Allow",
                 "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage",
                 "Resource": arn,
                 "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:*:*:{bucket}"}}}
    policy = _queue_policy(attributes.get("Policy"), statement)
    if attributes.get("Policy") != policy:
        sqs_client.set_queue_attributes(QueueUrl=queue_url_, Attributes={"Policy": policy})
    return arn


def notification_rule_id(queue_arn_: str) -> str:
    return f"facereel-{queue_arn_.rsplit(':', 1)[-1]}"


def ensure_notification(s3_client: Any, bucket: str, arn: str) -> Found:
    """An ObjectCreated -> queue rule on the bucket, merged with its other rules by id: rules
    of other ids (other consumers of the same bucket) are kept untouched."""
    current = s3_client.get_bucket_notification_configuration(Bucket=bucket)
    config = {name: list(current.get(name) or []) for name in (
        "TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")}
    rule_id = notification_rule_id(arn)
    wanted = {"Id": rule_id, "QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}
    ours = [r for r in config["QueueConfigurations"]
            if r.get("Id") == rule_id or r.get("QueueArn") == arn]
    if ours and all(r.get("QueueArn") == arn and r.get("Events") == wanted["Events"]
                    for r in ours) and len(ours) == 1:
        return Found("exists")
    config["QueueConfigurations"] = [r for r in config["QueueConfigurations"] if r not in ours]
    config["QueueConfigurations"].append(wanted)
    notification: dict[str, Any] = {name: rules for name, rules in config.items() if rules}
    if current.get("EventBridgeConfiguration") is not None:
        notification["EventBridgeConfiguration"] = current["EventBridgeConfiguration"]
    s3_client.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration=notification)
    return Found("created" if not ours else "exists", "" if not ours else "rule updated")
