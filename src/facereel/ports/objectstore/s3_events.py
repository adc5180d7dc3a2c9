"""S3 "object created" notifications (delivered to an SQS queue or straight to a Lambda): the
cloud trigger.

When an input bucket announces new uploads, hosts react to uploads instead of polling listings
(`facereel provision` wires the bucket to the queue). `parse_s3_event` turns a notification
into the objects it announces. Keys arrive URL-encoded with `+` for
spaces (as S3 sends them), so they are decoded with `unquote_plus`; S3's `s3:TestEvent` (sent
when notifications are configured) and anything unrecognised yield no objects. Bodies that
came through SNS (S3 -> SNS -> SQS without raw delivery) are unwrapped first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


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
