"""What a deployment's remote infrastructure must hold, derived from the stage list and the
storage settings: the plan `facereel provision` applies, and the one a deployment template
(deploy/aws/template.yaml) is checked against.

Only remote backends appear: folder buckets and SQLite files are created on first use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from facereel.config.sections import StorageSettings
from facereel.pipeline.definition import STAGES
from facereel.ports.metadata.dynamo_schema import (
    FACES_TABLE,
    PEOPLE_TABLE,
    PERSON_VIDEOS_TABLE,
    VIDEOS_TABLE,
    WINDOWS_TABLE,
)

ResourceKind = Literal["bucket", "queue", "table", "notification"]
IMAGE_REQUESTS = "images"  # the image tier's request queue
MAX_VISIBILITY_S = 43200


@dataclass(frozen=True)
class Resource:
    kind: ResourceKind
    name: str  # bucket, queue (as named on SQS), table, or notification rule target
    purpose: str
    properties: dict[str, Any] = field(default_factory=dict, compare=False)

    def describe(self) -> str:
        return f"{self.kind} {self.name}"


def dead_letter_name(queue: str) -> str:
    return f"{queue}-dead"


def _queues(storage: StorageSettings) -> list[Resource]:
    visibility = min(MAX_VISIBILITY_S, math.ceil(storage.visibility))
    found: list[Resource] = []
    names = [(stage.name, f"messages of the {stage.name} stage") for stage in STAGES]
    names.append((IMAGE_REQUESTS, "image requests of the web tier"))
    for name, purpose in names:
        queue = f"{storage.queue_prefix}-{name}"
        found.append(Resource("queue", dead_letter_name(queue), f"dead letters of {queue}",
                              {"dead_letter_of": queue}))
        found.append(Resource("queue", queue, purpose, {
            "visibility_timeout": visibility, "max_receive_count": storage.max_attempts,
            "dead_letter_queue": dead_letter_name(queue)}))
    return found


def plan(storage: StorageSettings) -> list[Resource]:
    """Every remote resource the configured backends need, in creation order (a dead-letter
    queue before the queue whose redrive policy names it, a queue before a notification)."""
    resources: list[Resource] = []
    for which in ("input", "stage1", "output"):
        bucket = storage.bucket(which)
        if bucket.backend == "s3":
            resources.append(Resource("bucket", bucket.name, f"the {which} bucket",
                                      {"bucket": which}))
    if storage.queue_backend == "sqs":
        resources += _queues(storage)
    if storage.metadata_backend == "dynamodb":
        resources += [
            Resource("table", storage.table_name, "people's metadata", {"spec": PEOPLE_TABLE}),
            Resource("table", storage.videos_table, "one status row per video",
                     {"spec": VIDEOS_TABLE}),
            Resource("table", storage.windows_table, "the join of long videos' windows",
                     {"spec": WINDOWS_TABLE}),
            Resource("table", storage.person_videos_table, "the videos each person's results "
                     "name", {"spec": PERSON_VIDEOS_TABLE, "filled_from": storage.videos_table}),
            Resource("table", storage.faces_table, "the face memory: every face track kept",
                     {"spec": FACES_TABLE}),
        ]
    if storage.events_queue and storage.input.backend == "s3":
        resources.append(Resource("queue", storage.events_queue,
                                  "S3 notifications of new uploads", {"events": True}))
        resources.append(Resource("notification", storage.events_queue,
                                  f"bucket {storage.input.name} announces uploads",
                                  {"bucket": storage.input.name}))
    return resources
