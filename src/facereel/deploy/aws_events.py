"""What a Lambda event asks for, as plain records: which stage runs on which body, and which
attempt this is. No AWS library is needed here, so the parsing is tested on its own.

    an S3 event (ObjectCreated on the input bucket)    an upload: the pipeline starts
    an SQS record from the events queue                 the same, delivered through SQS
    an SQS record from `<queue_prefix>-<stage>`         that stage's message
    a chain payload (`{"facereel": "chain/1", ...}`)    the next stage, invoked asynchronously
    an EventBridge scheduled event                      poll the input bucket (hybrid ingest)
    a task payload (`{"facereel": "task/1", "task": T}`) a scheduled upkeep task (the schedule's
                                                        own input): `memory-index`

S3 keys arrive URL-encoded (`+` for a space, UTF-8 percent-encoded): `parse_s3_event` decodes
them. `s3:TestEvent` and records of other buckets are logged and skipped, never failures.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from facereel.config.hosts import DeploySettings
from facereel.config.sections import StorageSettings
from facereel.errors import FacereelError
from facereel.pipeline.definition import stage
from facereel.pipeline.submit import first_message
from facereel.ports.objectstore.s3_events import parse_s3_event
from facereel.ports.queue import Body

log = logging.getLogger(__name__)
CHAIN_FORMAT = "chain/1"
TASK_FORMAT = "task/1"
TASKS = ("memory-index",)
START = ""  # the stage of an upload: the pipeline starts (how depends on the function)


class BadEventError(FacereelError):
    """An event or record this handler cannot read: a failure of that record only."""

    code = "bad_event"


@dataclass(frozen=True, slots=True)
class Work:
    """One stage run a record asks for; `stage` is START for an upload."""

    stage: str
    body: Body
    attempt: int = 1


def kind(event: Any) -> str:
    """`sqs`, `s3`, `chain`, `task`, `schedule` or `unknown`."""
    if not isinstance(event, dict):
        return "unknown"
    own = {CHAIN_FORMAT: "chain", TASK_FORMAT: "task"}.get(str(event.get("facereel")))
    if own is not None:
        return own
    if event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event":
        return "schedule"
    if event.get("Event") == "s3:TestEvent":
        return "s3"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        source = records[0].get("eventSource") or records[0].get("EventSource")
        return {"aws:sqs": "sqs", "aws:s3": "s3"}.get(str(source), "unknown")
    return "unknown"


def uploads(notification: dict[str, Any], bucket: str) -> list[Work]:
    """The pipeline starts an S3 notification asks for: objects created in `bucket`."""
    if notification.get("Event") == "s3:TestEvent":
        log.info("skipping s3:TestEvent", extra={"bucket": notification.get("Bucket")})
        return []
    found = []
    for event in parse_s3_event(notification):
        if event.bucket != bucket:
            log.warning("skipping an upload to bucket %s (input is %s)", event.bucket, bucket,
                        extra={"key": event.key})
            continue
        _, body = first_message(event.key, event.etag, event.size)
        found.append(Work(START, body))
    return found


def queue_stage(arn: str, storage: StorageSettings) -> str:
    """The stage whose queue (named `<prefix>-<stage>`) an SQS record came from, or START for
    the events queue (the input bucket's notifications)."""
    name = arn.rsplit(":", 1)[-1]
    if storage.events_queue and name == storage.events_queue:
        return START
    prefix = f"{storage.queue_prefix}-"
    if name.startswith(prefix):
        try:
            return stage(name[len(prefix):]).name
        except KeyError:
            pass
    raise BadEventError(f"a record from queue {name!r}, which is no stage's queue "
                        f"({prefix}<stage>) nor the events queue")


def _json(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise BadEventError(f"a record whose body is not JSON: {text[:80]!r}") from exc
    if not isinstance(body, dict):
        raise BadEventError(f"a record whose body is not a JSON object: {text[:80]!r}")
    return body


def record_work(body_text: str, arn: str, attempt: int, storage: StorageSettings,
                deploy: DeploySettings) -> list[Work]:
    """What one SQS record asks for (an S3 notification may announce several uploads)."""
    body = _json(body_text)
    source = queue_stage(arn, storage)
    if source == START or "Records" in body or body.get("Event") == "s3:TestEvent":
        return [Work(START, w.body, attempt) for w in uploads(body, storage.input.name)]
    if "key" not in body:
        raise BadEventError(f"a {source} message without a key: {body_text[:80]!r}")
    return [Work(deploy.stage or source, body, attempt)]


def chain_payload(stage_name: str, body: Body, attempt: int = 1) -> dict[str, Any]:
    """What an asynchronous invocation of a stage's function carries (chain mode)."""
    return {"facereel": CHAIN_FORMAT, "stage": stage_name, "body": body, "attempt": attempt}


def chain_work(event: dict[str, Any]) -> Work:
    body, name = event.get("body"), event.get("stage")
    if not isinstance(body, dict) or not isinstance(name, str):
        raise BadEventError("a chain payload without a stage and a body")
    try:
        return Work(stage(name).name if name else START, body, max(1, int(event["attempt"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadEventError(f"a chain payload with a bad stage or attempt: {exc}") from exc


def task_name(event: dict[str, Any]) -> str:
    """The upkeep task a task payload names."""
    name = event.get("task")
    if name not in TASKS:
        raise BadEventError(f"no task {name!r}; tasks: {', '.join(TASKS)}")
    return str(name)
