"""AWS Lambda host: event -> deliveries -> stage -> send. One entry point for every function
of the image, `facereel.deploy.aws_lambda.handler`.

The stage is the function's `FACEREEL_STAGE` when set, otherwise the event's (see
`aws_events`). An upload (an S3 event, straight or through the events queue) is handed to the
pipeline the way every message is handed on (`FACEREEL_INVOKE_MODE`): `queue` sends it to the
split queue, `chain` invokes the split function asynchronously; a function whose stage is
`split` runs it in this invocation instead (the original chain: S3 invoked the splitter).

SQS batches answer with a partial batch response (AWS Lambda Powertools' batch processor), so
only failed records come back; a record's attempt is its `ApproximateReceiveCount`. In chain
mode the attempt travels in the payload: a failed run invokes its own function again with the
next attempt, and the last one fails the invocation, which Lambda sends to the function's
on-failure destination (its stage's dead-letter queue, declared in the template).

Ports are built once per container, on the first invocation; models load when a stage first
needs them (ingest and publish never do). Logs are JSON with one correlation id per video;
counts and durations go out as CloudWatch embedded metrics.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
except ImportError as exc:  # the base install stays lean
    raise ImportError("facereel.deploy.aws_lambda needs the AWS extra: "
                      "pip install 'facereel[aws]'") from exc

from facereel.config import Settings
from facereel.config.sections import secret
from facereel.deploy.aws_events import (
    START,
    BadEventError,
    Work,
    chain_payload,
    chain_work,
    kind,
    record_work,
    task_name,
    uploads,
)
from facereel.errors import FacereelError
from facereel.pipeline.context import StageContext
from facereel.pipeline.definition import ENTRY, run_stage
from facereel.pipeline.inline import correlation_id
from facereel.pipeline.stages import Delivery
from facereel.pipeline.submit import already_started, submit
from facereel.pipeline.wiring import build_ports
from facereel.ports.metadata import VideoRecord
from facereel.ports.queue import Body
from facereel.runtime.watcher import BucketCursor, Watcher, error_recorder, queue_sender

logger = Logger(service="facereel")  # the `facereel` logger: every module's logs go through it
logging.getLogger("facereel").propagate = False  # not twice (the runtime's root handler)
metrics = Metrics(namespace="facereel", service="facereel")
log = logging.getLogger(__name__)


class LambdaHost:
    """What a container keeps between invocations: settings, ports, the stage context."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.deploy = settings.deploy
        self.storage = settings.storage
        self.ports = build_ports(settings.storage, settings.recognition.embedder)
        self.context = StageContext(self.ports, settings.recognition, settings.pipeline,
                                    settings.storage.gallery_staleness)
        self._lambda: Any = None

    @property
    def lambda_client(self) -> Any:
        if self._lambda is None:
            from facereel.ports.aws import boto_config, make_boto_client

            storage = self.storage
            self._lambda = make_boto_client(
                "lambda", self.deploy.lambda_endpoint, storage.aws_region,
                storage.aws_access_key, secret(storage.aws_secret_key), boto_config())
        return self._lambda

    # ---- handing messages on --------------------------------------------------------------
    def send(self, stage: str, body: Body, attempt: int = 1) -> None:
        if self.deploy.invoke_mode == "queue" and attempt == 1:
            self.ports.queues[stage].send(body)
        else:
            self.invoke(stage, body, attempt)
        metrics.add_metric(name="sent", unit=MetricUnit.Count, value=1)

    def invoke(self, stage: str, body: Body, attempt: int) -> None:
        """Run `stage` on `body` in its own function, asynchronously (chain mode)."""
        function = self.deploy.function_name(stage)
        response = self.lambda_client.invoke(
            FunctionName=function, InvocationType="Event",
            Payload=json.dumps(chain_payload(stage, body, attempt)).encode())
        if response.get("StatusCode") != 202 or response.get("FunctionError"):
            raise FacereelError(f"invoking {function} answered {response.get('StatusCode')}",
                                "invoke_failed")

    def start(self, body: Body) -> None:
        """An upload: hand its first message on, once per content."""
        key, etag = str(body["key"]), str(body.get("etag", ""))
        if already_started(self.ports, key, etag):
            log.info("%s was started already; a repeated event", key)
            return
        submit(self.ports, key, etag, int(body.get("size") or 0), self.send)
        metrics.add_metric(name="videos_started", unit=MetricUnit.Count, value=1)

    # ---- running ---------------------------------------------------------------------------
    def stage_of(self, work: Work) -> str:
        wanted = self.deploy.stage
        if work.stage == START:
            if wanted not in ("", ENTRY):
                raise BadEventError(f"an upload reached the {wanted} function")
            return wanted  # "" : start the pipeline; ENTRY: run it here
        if wanted and work.stage != wanted:
            raise BadEventError(f"a {work.stage} message reached the {wanted} function")
        return work.stage

    def run(self, work: Work) -> None:
        """One stage run (or an upload handed on) and the messages it sends."""
        with correlated(work):
            started = time.perf_counter()
            name = self.stage_of(work)
            if not name:
                self.start(work.body)
            else:
                for next_stage, body in run_stage(name, Delivery(work.body, work.attempt),
                                                  self.context):
                    self.send(next_stage, body)
            elapsed_ms = (time.perf_counter() - started) * 1000
            metrics.add_metric(name="runs", unit=MetricUnit.Count, value=1)
            metrics.add_metric(name="run_ms", unit=MetricUnit.Milliseconds, value=elapsed_ms)
            log.info("%s done", name or "start", extra={"ms": round(elapsed_ms, 1)})

    def failed(self, work: Work, exc: BaseException) -> bool:
        """Count and log a failed run; True when it was the last attempt (the video's row
        then says `dead`, as the local workers do)."""
        metrics.add_metric(name="failures", unit=MetricUnit.Count, value=1)
        last = work.attempt >= self.storage.max_attempts
        with correlated(work):
            log.error("%s failed (attempt %d): %s", work.stage or "start", work.attempt, exc,
                      extra={"attempt": work.attempt, "last": last})
        if last and "key" in work.body:
            self.ports.metadata.put_video(VideoRecord(
                str(work.body["key"]), str(work.body.get("etag", "")), "dead", time.time(),
                error_code=getattr(exc, "code", "stage_failed"),
                error_message=f"{work.stage or 'start'}: {exc}"))
        return last

    # ---- events ----------------------------------------------------------------------------
    def sqs_record(self, record: SQSRecord) -> None:
        attempt = int(record.attributes.approximate_receive_count or 1)
        try:
            works = record_work(record.body, record.event_source_arn, attempt, self.storage,
                                self.deploy)
        except BadEventError as exc:
            metrics.add_metric(name="failures", unit=MetricUnit.Count, value=1)
            log.error("unreadable record %s: %s", record.message_id, exc)
            raise
        for work in works:
            try:
                self.run(work)
            except Exception as exc:
                self.failed(work, exc)
                raise

    def chain(self, event: dict[str, Any]) -> None:
        work = chain_work(event)
        try:
            self.run(work)
        except Exception as exc:
            if self.failed(work, exc) or not work.stage:
                raise  # the invocation fails: Lambda sends it to the on-failure destination
            self.invoke(work.stage, work.body, work.attempt + 1)

    def s3(self, event: dict[str, Any]) -> None:
        for work in uploads(event, self.storage.input.name):
            self.run(work)

    def task(self, event: dict[str, Any]) -> dict[str, Any]:
        """A scheduled upkeep task: `memory-index` brings the face index snapshot up to date
        (its function has a reserved concurrency of 1: the snapshot's single writer)."""
        from facereel.app.memory import FaceMemory

        task_name(event)  # the only task so far
        report = FaceMemory(self.ports, self.settings).update_index()
        metrics.add_metric(name="memory_index_changed", unit=MetricUnit.Count,
                           value=report.changed)
        return report.to_dict()

    def poll(self) -> int:
        """The hybrid ingest: list the input bucket (say, on Ceph, which cannot notify AWS)
        and start what is new, remembering what was started in a cursor object."""
        bucket = self.ports.input.bucket
        cursor = BucketCursor(self.ports.stage1, f"ingest/cursor-{bucket}.json")
        return Watcher(self.ports.input, self.settings.pipeline, cursor,
                       queue_sender(self.ports, self.send), error_recorder(self.ports)).poll_once()


@contextmanager
def correlated(work: Work) -> Iterator[None]:
    """Every log line of this run carries the video's correlation id (the same on every
    stage and host), its key and the stage."""
    keys = {"correlation_id": correlation_id(work.body), "key": work.body.get("key"),
            "stage": work.stage or "start", "attempt": work.attempt}
    logger.append_keys(**keys)
    try:
        yield
    finally:
        logger.remove_keys(list(keys))


_HOST: LambdaHost | None = None


def host() -> LambdaHost:
    """The container's host, built on the first invocation (not at import: a bad setting is
    then an invocation error with its message, not an import failure)."""
    global _HOST  # noqa: PLW0603 - one per container is the point
    if _HOST is None:
        settings = Settings()
        level = settings.log_level if "log_level" in settings.model_fields_set else "INFO"
        logger.setLevel(level.upper())
        _HOST = LambdaHost(settings)
    return _HOST


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    current = host()
    metrics.add_dimension(name="function", value=current.deploy.stage or "any")
    which = kind(event)
    if which == "sqs":
        processor = BatchProcessor(event_type=EventType.SQS,
                                   raise_on_entire_batch_failure=False)
        return dict(process_partial_response(event=event, record_handler=current.sqs_record,
                                             processor=processor, context=context))
    if which == "chain":
        current.chain(event)
    elif which == "s3":
        current.s3(event)
    elif which == "schedule":
        return {"started": current.poll()}
    elif which == "task":
        return current.task(event)
    else:
        raise BadEventError(f"an event this handler does not know: {str(event)[:200]}")
    return {"ok": True}
