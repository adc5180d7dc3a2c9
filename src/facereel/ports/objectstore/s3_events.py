"""S3 "object created" notifications delivered to an SQS queue: the cloud trigger.

When an input bucket announces new uploads on a queue, workers react to uploads instead of
polling listings. `enable_s3_notifications` wires a bucket to a queue; `parse_s3_event` turns
a received message body into the objects it announces. Keys arrive URL-encoded with `+` for
spaces (as S3 sends them), so they are decoded with `unquote_plus`; S3's `s3:TestEvent` (sent
when notifications are configured) and anything unrecognised yield no objects. Bodies that
came through SNS (S3 -> SNS -> SQS without raw delivery) are unwrapped first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from facereel.errors import FacereelError
from facereel.ports.aws import BOTO_ERRORS, classify_boto_error


@dataclass(frozen=True, slots=True)
class S3ObjectEvent:
    bucket: str
    key: str
    etag: str  # without quotes, as ObjectInfo.etag
    size: int


def _unwrap_sns(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("Type") == "Notification" and isinstance(body.get("Message"), str):
        try:
            inner = json.loads(body["Message"])
        except ValueError:
            return body
        return inner if isinstance(inner, dict) else body
    return body


def _event(record: object) -> S3ObjectEvent | None:
    if not isinstance(record, dict):
        return None
    if not str(record.get("eventName", "")).startswith("ObjectCreated"):
        return None
    s3 = record.get("s3")
    if not isinstance(s3, dict):
        return None
    bucket, obj = s3.get("bucket"), s3.get("object")
    if not isinstance(bucket, dict) or not isinstance(obj, dict) or not obj.get("key"):
        return None
    try:
        size = int(obj.get("size") or 0)
    except (TypeError, ValueError):
        size = 0
    return S3ObjectEvent(bucket=str(bucket.get("name", "")), key=unquote_plus(str(obj["key"])),
                         etag=str(obj.get("eTag") or obj.get("etag") or "").strip('"'),
                         size=size)


def parse_s3_event(body: dict[str, Any]) -> list[S3ObjectEvent]:
    """The objects an S3 notification announces as created; [] for test events and for any
    other message, so a consumer can acknowledge those and move on."""
    if not isinstance(body, dict):
        return []
    body = _unwrap_sns(body)
    if body.get("Event") == "s3:TestEvent":
        return []
    records = body.get("Records")
    if not isinstance(records, list):
        return []
    return [event for event in map(_event, records) if event is not None]


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


def _allow_bucket(sqs_client: Any, queue_url: str, bucket: str) -> str:
    """Let S3 (for this bucket only) send to the queue; returns the queue's ARN."""
    attributes = sqs_client.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn", "Policy"])["Attributes"]
    queue_arn = str(attributes["QueueArn"])
    statement = {"Sid": f"facereel-s3-{bucket}", "Effect": "Allow",
                 "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage",
                 "Resource": queue_arn,
                 "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:*:*:{bucket}"}}}
    policy = _queue_policy(attributes.get("Policy"), statement)
    sqs_client.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})
    return queue_arn


def _notify_queue(s3_client: Any, bucket: str, queue_arn: str) -> None:
    """Add an ObjectCreated -> queue rule, keeping the bucket's other notification rules."""
    current = s3_client.get_bucket_notification_configuration(Bucket=bucket)
    config = {name: list(current.get(name) or []) for name in (
        "TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")}
    rule_id = f"facereel-{queue_arn.rsplit(':', 1)[-1]}"
    config["QueueConfigurations"] = [
        rule for rule in config["QueueConfigurations"]
        if rule.get("Id") != rule_id and rule.get("QueueArn") != queue_arn]
    config["QueueConfigurations"].append(
        {"Id": rule_id, "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]})
    notification: dict[str, Any] = {name: rules for name, rules in config.items() if rules}
    if current.get("EventBridgeConfiguration") is not None:
        notification["EventBridgeConfiguration"] = current["EventBridgeConfiguration"]
    s3_client.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration=notification)


def enable_s3_notifications(s3_client: Any, bucket: str, sqs_client: Any,
                            queue_url: str) -> None:
    """Make `bucket` announce every created object on the queue at `queue_url` (S3 then
    sends an `s3:TestEvent` message to the queue first, which `parse_s3_event` skips)."""
    try:
        queue_arn = _allow_bucket(sqs_client, queue_url, bucket)
        _notify_queue(s3_client, bucket, queue_arn)
    except BOTO_ERRORS as exc:
        kind, detail = classify_boto_error(exc)
        code = {"denied": "storage_denied", "unreachable": "storage_unreachable"}.get(
            kind, "notification_error")
        raise FacereelError(f"cannot make s3 bucket {bucket} notify {queue_url}: {detail}",
                            code) from exc
