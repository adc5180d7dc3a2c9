"""Build the pipeline's ports from the storage settings: three buckets, the stage queues, the
metadata store, the gallery and the face memory. Each bucket is configured on its own, so a
hybrid deployment can read videos from a private Ceph/SeaweedFS bucket and write results to
AWS S3.

Remote resources are opened, never created (`facereel provision` creates them); embedded
ones (folders, SQLite files) are created on first use. Queues open when first used, so a host
that runs one stage (a Lambda function) touches only the queues it sends to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facereel.config.sections import BucketSettings, StorageSettings, secret
from facereel.core.embedders import embedder_dim
from facereel.ports.gallery import GalleryStore
from facereel.ports.gallery.bucket import BucketGalleryStore
from facereel.ports.gallery.file import FileGalleryStore
from facereel.ports.memory import MemoryStore
from facereel.ports.memory.sqlite import SqliteMemory
from facereel.ports.metadata import MetadataStore
from facereel.ports.metadata.sqlite import SqliteMetadata
from facereel.ports.objectstore import ObjectStore
from facereel.ports.objectstore.local import LocalObjectStore
from facereel.ports.queue import Queue
from facereel.ports.queue.sqlite import POLL_S, SqliteQueue

INTERACTIVE_POLL_S = 0.01


class Queues:
    """Named queues on the configured backend, opened on first use and kept."""

    def __init__(self, opener: Callable[[str], Queue]) -> None:
        self._opener = opener
        self._open: dict[str, Queue] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> Queue:
        with self._lock:
            if name not in self._open:
                self._open[name] = self._opener(name)
            return self._open[name]


@dataclass(slots=True)
class Ports:
    input: ObjectStore
    stage1: ObjectStore
    output: ObjectStore
    queues: Queues
    metadata: MetadataStore
    gallery: GalleryStore
    memory: MemoryStore  # the face memory: every face track kept (follows the metadata backend)
    stores: dict[str, ObjectStore] = field(default_factory=dict)  # bucket field -> store


def bucket_root(storage: StorageSettings, bucket: BucketSettings) -> Path:
    return storage.data_dir / "buckets" / bucket.name


def s3_client(storage: StorageSettings, bucket: BucketSettings) -> Any:
    from facereel.ports.objectstore.s3 import make_s3_client

    return make_s3_client(bucket.endpoint, bucket.region or storage.aws_region,
                          bucket.access_key or storage.aws_access_key,
                          secret(bucket.secret_key) or secret(storage.aws_secret_key))


def object_store(storage: StorageSettings, bucket: BucketSettings) -> ObjectStore:
    if bucket.backend == "local":
        return LocalObjectStore(bucket_root(storage, bucket), bucket.name)
    from facereel.ports.objectstore.s3 import S3ObjectStore

    return S3ObjectStore(s3_client(storage, bucket), bucket.name)


def sqs_client(storage: StorageSettings) -> Any:
    from facereel.ports.queue.sqs import make_sqs_client

    return make_sqs_client(storage.sqs_endpoint, storage.aws_region, storage.aws_access_key,
                           secret(storage.aws_secret_key))


def queue_name(storage: StorageSettings, name: str) -> str:
    """The queue's name on its backend: SQS queues carry the deployment's prefix."""
    return name if storage.queue_backend == "sqlite" else f"{storage.queue_prefix}-{name}"


def tier_queue(storage: StorageSettings, name: str, interactive: bool = False,
               client: Any = None) -> Queue:
    """A named queue on the configured backend (pipeline stages, image requests, replies).
    An `interactive` queue has someone waiting on each message: a local one is polled every
    few milliseconds instead of every 50 (SQS long polling answers at once either way)."""
    if storage.queue_backend == "sqlite":
        return SqliteQueue(storage.data_dir / "queues.db", name, storage.visibility,
                           storage.max_attempts,
                           poll_s=INTERACTIVE_POLL_S if interactive else POLL_S)
    from facereel.ports.queue.sqs import SqsQueue

    return SqsQueue(client or sqs_client(storage), queue_name(storage, name), storage.visibility,
                    storage.max_attempts)


def metadata_store(storage: StorageSettings) -> MetadataStore:
    if storage.metadata_backend == "sqlite":
        return SqliteMetadata(storage.metadata_path)
    from facereel.ports.metadata.dynamodb import DynamoMetadata, make_dynamo

    resource = make_dynamo(storage.dynamodb_endpoint, storage.aws_region,
                           storage.aws_access_key, secret(storage.aws_secret_key))
    return DynamoMetadata(resource, storage.table_name, storage.videos_table,
                          storage.windows_table, storage.person_videos_table)


def memory_store(storage: StorageSettings) -> MemoryStore:
    """The face memory, beside the metadata: SQLite in the data directory, or DynamoDB."""
    if storage.metadata_backend == "sqlite":
        return SqliteMemory(storage.memory_path)
    from facereel.ports.memory.dynamodb import DynamoMemory
    from facereel.ports.metadata.dynamodb import make_dynamo

    resource = make_dynamo(storage.dynamodb_endpoint, storage.aws_region,
                           storage.aws_access_key, secret(storage.aws_secret_key))
    return DynamoMemory(resource, storage.faces_table)


def gallery_store(storage: StorageSettings, embedder: str,
                  stores: dict[str, ObjectStore] | None = None) -> GalleryStore:
    """The gallery: a file on this machine, or objects in a bucket every host can read."""
    dim = embedder_dim(embedder)
    where = storage.gallery_location
    if where == "file":
        return FileGalleryStore(storage.gallery_path, embedder, dim)
    store = (stores or {}).get(where) or object_store(storage, storage.bucket(where))
    return BucketGalleryStore(store, embedder, dim)


def build_ports(storage: StorageSettings, embedder: str) -> Ports:
    stores = {name: object_store(storage, storage.bucket(name))
              for name in ("input", "stage1", "output")}
    client = sqs_client(storage) if storage.queue_backend == "sqs" else None
    return Ports(
        input=stores["input"], stage1=stores["stage1"], output=stores["output"],
        queues=Queues(lambda name: tier_queue(storage, name, client=client)),
        metadata=metadata_store(storage),
        gallery=gallery_store(storage, embedder, stores),
        memory=memory_store(storage),
        stores=stores,
    )
