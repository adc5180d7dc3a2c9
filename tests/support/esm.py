"""What Lambda's SQS event source mapping does, played against a queue on moto: receive a
batch, hand it to the function as an SQS event, delete the records it did not report in
`batchItemFailures`, and let the failed ones come back (here at once; on AWS after the
visibility timeout)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.aws_shapes import sqs_event, sqs_record
from tests.support.lambda_runtime import LambdaFunction


@dataclass
class EventSourceMapping:
    sqs: Any
    queue: str
    function: LambdaFunction
    batch_size: int = 1
    transform: Callable[[str], str] | None = None  # e.g. re-encode moto's S3 keys
    delivered: list[dict[str, Any]] = field(default_factory=list)  # every record handed over
    failures: list[list[str]] = field(default_factory=list)  # each batch's failed ids

    def __post_init__(self) -> None:
        self.url = self.sqs.get_queue_url(QueueName=self.queue)["QueueUrl"]

    def poll_once(self) -> int:
        response = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=0,
            VisibilityTimeout=60, MessageSystemAttributeNames=["All"])
        messages = response.get("Messages") or []
        if not messages:
            return 0
        records = [sqs_record(self.queue, self._body(m["Body"]), m["MessageId"],
                              int(m["Attributes"]["ApproximateReceiveCount"]),
                              m["ReceiptHandle"]) for m in messages]
        self.delivered += records
        answer = self.function.invoke(sqs_event(*records))
        assert answer.ok, f"{self.function.function_name} failed a whole batch: {answer.payload}"
        failed = [item["itemIdentifier"] for item in answer.payload["batchItemFailures"]]
        self.failures.append(failed)
        for message in messages:
            if message["MessageId"] in failed:
                self.sqs.change_message_visibility(QueueUrl=self.url, VisibilityTimeout=0,
                                                   ReceiptHandle=message["ReceiptHandle"])
            else:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _body(self, body: str) -> str:
        return self.transform(body) if self.transform else body


def drain(mappings: list[EventSourceMapping], done: Callable[[], bool],
          timeout_s: float = 90.0) -> None:
    """Poll every mapping until `done()` (checked when a round found nothing to do)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sum(mapping.poll_once() for mapping in mappings) == 0:
            if done():
                return
            time.sleep(0.2)
    raise AssertionError(f"the functions did not finish within {timeout_s} s")
