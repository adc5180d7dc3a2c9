"""`facereel provision`: create what the configured remote backends need, idempotently, and say
for each resource whether it was created, already existed as planned, or differs.

Hosts never create infrastructure; this is the one place that does (so functions and workers
run with read/write rights only). The plan comes from `pipeline.infra`, derived from the
stage list. A resource that differs is reported, not changed, unless `fix` is set (queue
attributes and notification rules can be brought in line; a table's key schema cannot).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from facereel.config.sections import StorageSettings, secret
from facereel.errors import FacereelError
from facereel.pipeline.infra import Resource, plan
from facereel.pipeline.wiring import s3_client, sqs_client
from facereel.ports import aws_resources as aws
from facereel.ports.aws import BOTO_ERRORS, classify_boto_error


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    name: str
    purpose: str
    state: str  # created | exists | different | error
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class Provisioner:
    """Applies the plan with one client per service (and per bucket endpoint)."""

    def __init__(self, storage: StorageSettings, fix: bool = False) -> None:
        self.storage = storage
        self.fix = fix
        self._sqs: Any = None
        self._dynamo: Any = None

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = sqs_client(self.storage)
        return self._sqs

    @property
    def dynamo(self) -> Any:
        if self._dynamo is None:
            from facereel.ports.aws import boto_config, make_boto_client

            storage = self.storage
            self._dynamo = make_boto_client(
                "dynamodb", storage.dynamodb_endpoint, storage.aws_region,
                storage.aws_access_key, secret(storage.aws_secret_key), boto_config())
        return self._dynamo

    def apply(self, resource: Resource) -> Outcome:
        ensure: dict[str, Callable[[Resource], aws.Found]] = {
            "bucket": self._bucket, "queue": self._queue, "table": self._table,
            "notification": self._notification}
        try:
            found = ensure[resource.kind](resource)
        except BOTO_ERRORS as exc:
            kind, detail = classify_boto_error(exc)
            return Outcome(resource.kind, resource.name, resource.purpose, "error",
                           f"{kind}: {detail}")
        except (LookupError, FacereelError) as exc:
            return Outcome(resource.kind, resource.name, resource.purpose, "error", str(exc))
        return Outcome(resource.kind, resource.name, resource.purpose, found.state,
                       found.detail)

    def _bucket(self, resource: Resource) -> aws.Found:
        bucket = self.storage.bucket(str(resource.properties["bucket"]))
        return aws.ensure_bucket(s3_client(self.storage, bucket), bucket.name)

    def _queue(self, resource: Resource) -> aws.Found:
        props = resource.properties
        if "dead_letter_of" in props:
            return aws.ensure_queue(self.sqs, resource.name, aws.DEAD_LETTER_ATTRIBUTES,
                                    self.fix)
        if props.get("events"):
            return aws.ensure_queue(self.sqs, resource.name, {}, self.fix)
        attributes = aws.stage_queue_attributes(
            self.sqs, str(props["dead_letter_queue"]), int(props["visibility_timeout"]),
            int(props["max_receive_count"]))
        return aws.ensure_queue(self.sqs, resource.name, attributes, self.fix)

    def _table(self, resource: Resource) -> aws.Found:
        range_key = resource.properties.get("range_key")
        return aws.ensure_table(self.dynamo, resource.name, str(resource.properties["hash_key"]),
                                str(range_key) if range_key else None)

    def _notification(self, resource: Resource) -> aws.Found:
        url = aws.queue_url(self.sqs, resource.name)
        if url is None:
            raise LookupError(f"queue {resource.name} does not exist")
        bucket = str(resource.properties["bucket"])
        arn = aws.allow_bucket(self.sqs, url, bucket)
        client = s3_client(self.storage, self.storage.input)
        return aws.ensure_notification(client, bucket, arn)


def provision(storage: StorageSettings, fix: bool = False) -> list[Outcome]:
    """Apply the plan; every resource gets an outcome (errors included: one failing resource
    does not hide the state of the others)."""
    provisioner = Provisioner(storage, fix)
    return [provisioner.apply(resource) for resource in plan(storage)]
