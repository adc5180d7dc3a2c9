"""Events shaped exactly as AWS delivers them (field for field, from AWS's documentation of S3
notifications, SQS event source records and EventBridge scheduled events), and a fix for
moto releases that put keys in S3 notifications unencoded, where S3 URL-encodes them."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote_plus, unquote_plus

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


def aws_key(key: str) -> str:
    """A key as S3 writes it into a notification: `+` for spaces, UTF-8 percent-encoded."""
    return quote_plus(key, safe="/")


def s3_record(bucket: str, key: str, etag: str, size: int = 1024,
              event: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2026-11-29T12:00:00.000Z", "eventName": event,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810",
                             "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "facereel-uploads",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": aws_key(key), "size": size, "eTag": etag,
                          "sequencer": "0055AED6DCD90281E5"}},
    }


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def s3_test_event(bucket: str) -> dict[str, Any]:
    return {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-29T12:00:00.000Z",
            "Bucket": bucket, "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkw"}


def sqs_record(queue: str, body: str, message_id: str, receive_count: int = 1,
               receipt: str = "") -> dict[str, Any]:
    return {
        "messageId": message_id, "receiptHandle": receipt or f"AQEB{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count),
                       "SentTimestamp": "1795992521518", "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                       "ApproximateFirstReceiveTimestamp": "1795992521530"},
        "messageAttributes": {}, "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
        "awsRegion": REGION,
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def scheduled_event() -> dict[str, Any]:
    return {"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event", "source": "aws.events", "account": ACCOUNT,
            "time": "2026-11-29T12:00:00Z", "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/facereel-poll"], "detail": {}}


def as_aws_sends(body: str, uploaded: set[str]) -> str:
    """An S3 notification from moto with its keys as S3 writes them. Older moto releases put
    keys in unencoded, S3 URL-encodes them (moto 5.2 does too): a key that is one of the
    `uploaded` keys as it is, and not their encoding, is encoded."""
    doc = json.loads(body)
    for record in doc.get("Records") or []:
        obj = record.get("s3", {}).get("object", {})
        key = obj.get("key")
        if key in uploaded and unquote_plus(key) not in uploaded:
            obj["key"] = aws_key(key)
    return json.dumps(doc)
