"""Build the pipeline's ports from Settings: three buckets, one queue per stage, the metadata
store. Each bucket is configured on its own, so a hybrid deployment can read videos from a
private Ceph/SeaweedFS bucket and write results to AWS S3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facereel.config import BucketSettings, Settings
from facereel.ports.metadata import MetadataStore
from facereel.ports.metadata.sqlite import SqliteMetadata
from facereel.ports.objectstore import ObjectStore
from facereel.ports.objectstore.local import LocalObjectStore
from facereel.ports.queue import Queue
from facereel.ports.queue.sqlite import POLL_S, SqliteQueue

STAGES = ("split", "recognise", "publish")


@dataclass(slots=True)
class Ports:
    input: ObjectStore
    stage1: ObjectStore
    output: ObjectStore
    queues: dict[str, Queue]
    metadata: MetadataStore


def bucket_root(settings: Settings, bucket: BucketSettings) -> Any:
    return settings.data_dir / "buckets" / bucket.name


def object_store(settings: Settings, bucket: BucketSettings) -> ObjectStore:
    if bucket.backend == "local":
        return LocalObjectStore(bucket_root(settings, bucket), bucket.name)
    from facereel.ports.objectstore.s3 import S3ObjectStore, make_s3_client

    client = make_s3_client(bucket.endpoint, bucket.region or settings.aws_region,
                            bucket.access_key or settings.aws_access_key,
                            bucket.secret_key or settings.aws_secret_key)
    return S3ObjectStore(client, bucket.name, create=True)


def sqs_client(settings: Settings) -> Any:
    from facereel.ports.queue.sqs import make_sqs_client

    return make_sqs_client(settings.sqs_endpoint, settings.aws_region, settings.aws_access_key,
                           settings.aws_secret_key)


def tier_queue(settings: Settings, name: str, interactive: bool = False) -> Queue:
    """A named queue on the configured backend (pipeline stages, image requests, replies).
    An `interactive` queue has someone waiting on each message: a local one is polled every
    few milliseconds instead of every 50 (SQS long polling answers at once either way)."""
    if settings.queue_backend == "sqlite":
        return SqliteQueue(settings.data_dir / "queues.db", name, settings.visibility,
                           settings.max_attempts, poll_s=0.01 if interactive else POLL_S)
    from facereel.ports.queue.sqs import SqsQueue

    return SqsQueue(sqs_client(settings), f"{settings.queue_prefix}-{name}", settings.visibility,
                    settings.max_attempts)


def metadata_store(settings: Settings) -> MetadataStore:
    if settings.metadata_backend == "sqlite":
        return SqliteMetadata(settings.metadata_path)
    from facereel.ports.metadata.dynamodb import DynamoMetadata, make_dynamo

    resource = make_dynamo(settings.dynamodb_endpoint, settings.aws_region,
                           settings.aws_access_key, settings.aws_secret_key)
    return DynamoMetadata(resource, settings.table_name, settings.videos_table, create=True)


def build_ports(settings: Settings) -> Ports:
    return Ports(
        input=object_store(settings, settings.input),
        stage1=object_store(settings, settings.stage1),
        output=object_store(settings, settings.output),
        queues={stage: tier_queue(settings, stage) for stage in STAGES},
        metadata=metadata_store(settings),
    )
