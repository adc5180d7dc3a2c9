"""Create remote resources for a test the way `facereel provision` does (hosts never create
them): a queue with its dead-letter queue and redrive policy, a bucket, metadata tables."""

from __future__ import annotations

from typing import Any

from facereel.ports import aws_resources as aws
from facereel.ports.metadata.dynamo_schema import (
    PEOPLE_TABLE,
    PERSON_VIDEOS_TABLE,
    VIDEOS_TABLE,
    WINDOWS_TABLE,
)
from facereel.ports.metadata.dynamodb import DynamoMetadata


def sqs_queue(client: Any, name: str, visibility_s: float = 30.0, max_attempts: int = 5) -> str:
    """Create `name` and `name-dead`; returns the queue's URL."""
    aws.ensure_queue(client, f"{name}-dead", aws.DEAD_LETTER_ATTRIBUTES)
    attributes = aws.stage_queue_attributes(client, f"{name}-dead", round(visibility_s),
                                            max_attempts)
    aws.ensure_queue(client, name, attributes, fix=True)
    url = aws.queue_url(client, name)
    assert url is not None
    return url


def s3_bucket(client: Any, name: str) -> None:
    aws.ensure_bucket(client, name)


def dynamo_tables(resource: Any, people: str, videos: str, windows: str,
                  person_videos: str) -> DynamoMetadata:
    client = resource.meta.client
    for table, spec in ((people, PEOPLE_TABLE), (videos, VIDEOS_TABLE),
                        (windows, WINDOWS_TABLE), (person_videos, PERSON_VIDEOS_TABLE)):
        aws.ensure_table(client, table, spec)
    return DynamoMetadata(resource, people, videos, windows, person_videos)
