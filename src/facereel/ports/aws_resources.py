"""Create (or check) the AWS resources a deployment needs: buckets, queues with their dead-letter
queue and redrive policy, DynamoDB tables, and a bucket's event notification to a queue.

Every `ensure_*` is idempotent and answers what it found: `created`, `exists` (as it should be)
or `different` (it exists but differs from the plan, with what differs). Only `facereel
provision` calls these: hosts never create infrastructure, so a Lambda or a worker needs no
Create* rights and no start-up calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from facereel.ports.aws import classify_boto_error

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
def ensure_table(client: Any, name: str, hash_key: str, range_key: str | None = None) -> Found:
    """A pay-per-request table with a string hash key (and string range key, when given),
    waited for until usable."""
    schema = [(hash_key, "HASH")] + ([(range_key, "RANGE")] if range_key else [])
    try:
        table = client.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if classify_boto_error(exc)[0] != "no_container":
            raise
    else:
        keys = [(k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", [])]
        if keys != schema:
            return Found("different", f"key schema is {keys}, should be {schema}")
        return Found("exists")
    try:
        client.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in schema],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}
                                  for key, _ in schema])
    except ClientError as exc:
        if _code(exc) != "ResourceInUseException":
            raise
    client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return Found("created")


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
