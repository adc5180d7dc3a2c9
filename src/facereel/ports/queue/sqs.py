"""SqsQueue: the Queue port over Amazon SQS (or a compatible server such as moto).

SQS already provides what the port promises: a visibility timeout, at-least-once delivery, a
receive count per message and a redrive policy that moves a message to a dead-letter queue
after `maxReceiveCount` receives. This adapter maps the port onto it:

- times are whole seconds on SQS: visibility and delays are rounded up (never shorter than
  asked), send delays are capped at 900 s and long polls at 20 s per request;
- a stale receipt (the message was received again since) is ignored by `ack`, `retry` and
  `extend` when this instance saw the newer delivery; SQS itself may still honour an old
  receipt handle, so across processes the guarantee is SQS's ("may be deleted");
- `depth().delayed` only counts delayed sends: a `retry` keeps the message in flight on SQS,
  so it shows in `in_flight` until its delay ends;
- a body that is not a JSON object arrives as `{"_raw": text}` rather than failing receive.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from facereel.errors import FacereelError
from facereel.ports.aws import (
    BOTO_ERRORS,
    boto_config,
    classify_boto_error,
    make_boto_client,
)
from facereel.ports.queue import Body, DeadLetter, Message, QueueDepth, Redrive

T = TypeVar("T")

MAX_DELAY_S = 900
MAX_WAIT_S = 20
MAX_BATCH = 10
MAX_VISIBILITY_S = 43200
DEAD_RETENTION_S = 1209600  # 14 days, the SQS maximum: dead letters wait for a person
POLL_S = 0.05
REMEMBERED_RECEIPTS = 10000
MAX_REDRIVE = 10000  # dead letters one redrive looks at
_STALE_RECEIPT = {"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight",
                  "AWS.SimpleQueueService.MessageNotInflight", "InvalidReceiptHandle"}
_EXISTS = {"QueueAlreadyExists", "QueueNameExists", "AWS.SimpleQueueService.QueueNameExists"}


class QueueError(FacereelError):
    """A queue operation failed (server unreachable, access denied, missing queue...)."""

    code = "queue_error"


def make_sqs_client(endpoint_url: str | None, region: str | None, access_key: str | None,
                    secret_key: str | None, *, max_attempts: int = 5) -> Any:
    """An SQS client whose read timeout outlasts a 20 s long poll."""
    config = boto_config(max_attempts, read_timeout_s=MAX_WAIT_S + 15)
    return make_boto_client("sqs", endpoint_url, region, access_key, secret_key, config)


def _seconds(value: float, upper: int) -> int:
    return int(min(upper, max(0, math.ceil(value))))


def _body(text: str) -> Body:
    try:
        body = json.loads(text)
    except ValueError:
        return {"_raw": text}
    return body if isinstance(body, dict) else {"_raw": text}


def _stale(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _STALE_RECEIPT


class SqsQueue:
    """One SQS queue (plus its `<name>-dead` dead-letter queue) seen through the Queue port."""

    def __init__(self, client: Any, name: str, visibility_s: float = 120.0,
                 max_attempts: int = 5, *, url: str | None = None) -> None:
        """The existing queue `name` (`url` saves looking it up): hosts never create queues,
        `facereel provision` does, with the dead-letter queue and redrive policy."""
        self.client = client
        self.name = name
        self.visibility_s = visibility_s
        self.max_attempts = max_attempts
        self._dead_url: str | None = None
        self._dead_known = False  # whether the redrive policy was looked at
        self._latest: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self.url = url or self._call("find queue", lambda: str(
            client.get_queue_url(QueueName=name)["QueueUrl"]))

    @classmethod
    def from_url(cls, client: Any, url: str, visibility_s: float = 120.0) -> SqsQueue:
        """The existing queue at `url`; its dead-letter queue and `max_attempts` come from
        the queue's RedrivePolicy (without one, nothing is ever dead-lettered)."""
        name = url.rstrip("/").rsplit("/", 1)[-1]
        queue = cls(client, name, visibility_s, max_attempts=0, url=url)
        _ = queue.dead_url
        return queue

    def describe(self) -> str:
        return f"sqs queue {self.url}"

    @property
    def dead_url(self) -> str | None:
        """The dead-letter queue named by the redrive policy (looked up once, when needed)."""
        if not self._dead_known:
            self._dead_url = self._call("inspect queue", self._find_dead_url)
            self._dead_known = True
        return self._dead_url

    def _find_dead_url(self) -> str | None:
        response = self.client.get_queue_attributes(QueueUrl=self.url,
                                                    AttributeNames=["RedrivePolicy"])
        policy = response.get("Attributes", {}).get("RedrivePolicy")
        if not policy:
            return None
        redrive = json.loads(policy)
        self.max_attempts = self.max_attempts or int(redrive.get("maxReceiveCount", 0))
        _, _, _, _, account, dead_name = str(redrive["deadLetterTargetArn"]).split(":", 5)
        found = self.client.get_queue_url(QueueName=dead_name, QueueOwnerAWSAccountId=account)
        return str(found["QueueUrl"])

    # ---- errors -------------------------------------------------------------------------
    def _error(self, action: str, exc: BaseException) -> QueueError:
        kind, detail = classify_boto_error(exc)
        code = {"denied": "queue_denied", "unreachable": "queue_unreachable",
                "no_container": "queue_not_found"}.get(kind, "queue_error")
        where = getattr(self, "url", None) or self.name
        if code == "queue_not_found":
            return QueueError(f"sqs queue {where} does not exist: create it with "
                              "`facereel provision`", code)
        return QueueError(f"cannot {action} (sqs queue {where}): {detail}", code)

    def _call(self, action: str, operation: Callable[[], T]) -> T:
        """Run one SQS operation, turning any boto failure into a QueueError."""
        try:
            return operation()
        except BOTO_ERRORS as exc:
            raise self._error(action, exc) from exc

    def _tolerant(self, action: str, message: Message, operation: Callable[[], object]) -> None:
        """Like `_call`, but a receipt that is no longer current is ignored, as the port
        promises: the message was delivered again (or is gone) since this delivery."""
        if self._outdated(message):
            return
        try:
            operation()
        except ClientError as exc:
            if not _stale(exc):
                raise self._error(action, exc) from exc
        except BOTO_ERRORS as exc:
            raise self._error(action, exc) from exc

    # ---- receipts -----------------------------------------------------------------------
    def _remember(self, message: Message) -> None:
        with self._lock:
            self._latest[message.id] = message.receipt
            self._latest.move_to_end(message.id)
            while len(self._latest) > REMEMBERED_RECEIPTS:
                self._latest.popitem(last=False)

    def _outdated(self, message: Message) -> bool:
        with self._lock:
            latest = self._latest.get(message.id)
        return latest is not None and latest != message.receipt

    def _forget(self, message: Message) -> None:
        with self._lock:
            if self._latest.get(message.id) == message.receipt:
                del self._latest[message.id]

    # ---- the Queue port -----------------------------------------------------------------
    def send(self, body: Body, delay_s: float = 0.0) -> str:
        text = json.dumps(body)
        delay = _seconds(delay_s, MAX_DELAY_S)
        response = self._call("send", lambda: self.client.send_message(
            QueueUrl=self.url, MessageBody=text, DelaySeconds=delay))
        return str(response["MessageId"])

    def receive(self, max_messages: int = 1, wait_s: float = 0.0) -> list[Message]:
        """Up to `max_messages` messages, long-polling up to `wait_s` for the first ones."""
        deadline = time.monotonic() + max(0.0, wait_s)
        taken: list[Message] = []
        while len(taken) < max_messages:
            remaining = deadline - time.monotonic()
            wait = min(MAX_WAIT_S, int(remaining)) if not taken and remaining > 0 else 0
            batch = self._receive_batch(min(MAX_BATCH, max_messages - len(taken)), wait)
            taken.extend(batch)
            if taken and len(batch) < MAX_BATCH:
                break  # took what was there; do not wait for more
            if not taken and time.monotonic() >= deadline:
                break
            if not batch and wait == 0:
                time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
        return taken

    def _receive_batch(self, count: int, wait: int) -> list[Message]:
        visibility = _seconds(self.visibility_s, MAX_VISIBILITY_S)
        response = self._call("receive", lambda: self.client.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
            VisibilityTimeout=visibility, MessageSystemAttributeNames=["ApproximateReceiveCount"]))
        messages = []
        for item in response.get("Messages") or []:
            attempts = int(item.get("Attributes", {}).get("ApproximateReceiveCount", 1))
            message = Message(str(item["MessageId"]), _body(str(item.get("Body", ""))),
                              str(item["ReceiptHandle"]), attempts)
            self._remember(message)
            messages.append(message)
        return messages

    def ack(self, message: Message) -> None:
        self._tolerant("acknowledge", message, partial(
            self.client.delete_message, QueueUrl=self.url, ReceiptHandle=message.receipt))
        self._forget(message)

    def retry(self, message: Message, delay_s: float) -> None:
        self._tolerant("retry", message, partial(
            self.client.change_message_visibility, QueueUrl=self.url,
            ReceiptHandle=message.receipt, VisibilityTimeout=_seconds(delay_s, MAX_VISIBILITY_S)))

    def extend(self, message: Message, visibility_s: float) -> None:
        self._tolerant("extend", message, partial(
            self.client.change_message_visibility, QueueUrl=self.url,
            ReceiptHandle=message.receipt,
            VisibilityTimeout=_seconds(visibility_s, MAX_VISIBILITY_S)))

    def _counts(self, url: str) -> tuple[int, int, int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        response = self._call("count messages", lambda: self.client.get_queue_attributes(
            QueueUrl=url, AttributeNames=names))
        attributes = response.get("Attributes", {})
        visible, in_flight, delayed = (int(attributes.get(name, 0)) for name in names)
        return visible, in_flight, delayed

    def depth(self) -> QueueDepth:
        visible, in_flight, delayed = self._counts(self.url)
        dead = sum(self._counts(self.dead_url)) if self.dead_url else 0
        return QueueDepth(visible, in_flight, delayed, dead)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Dead letters left where they are (the redrive policy moved each one there after
        `max_attempts` receives)."""
        found: list[DeadLetter] = []

        def look(message: dict[str, Any]) -> bool:
            found.append(self._letter(message))
            return False

        self._browse_dead(look, limit)
        return found

    def redrive(self, select: Redrive) -> list[DeadLetter]:
        """Each chosen dead letter is sent to this queue, then deleted from the dead-letter
        queue (a failure in between may send it twice, which the stages absorb)."""
        sent: list[DeadLetter] = []

        def send_back(message: dict[str, Any]) -> bool:
            letter = self._letter(message)
            body = select(letter)
            if body is None:
                return False
            self.send(body)
            self._call("delete a redriven dead letter", partial(
                self.client.delete_message, QueueUrl=self.dead_url,
                ReceiptHandle=message["ReceiptHandle"]))
            sent.append(letter)
            return True

        self._browse_dead(send_back, MAX_REDRIVE)
        return sent

    def _letter(self, message: dict[str, Any]) -> DeadLetter:
        return DeadLetter(str(message["MessageId"]), _body(str(message.get("Body", ""))),
                          self.max_attempts)

    def _browse_dead(self, visit: Callable[[dict[str, Any]], bool], limit: int) -> None:
        """Each dead letter (up to `limit`) once: each is hidden while browsing (so later
        batches show others); those `visit` did not consume are made visible again."""
        dead_url = self.dead_url
        if not dead_url or limit <= 0 or sum(self._counts(dead_url)) == 0:
            return
        seen: set[str] = set()
        kept: list[dict[str, Any]] = []
        try:
            while len(seen) < limit:
                wait = 1 if not seen else 0  # long poll once: short polls may miss messages
                response = self._call("read dead letters", partial(
                    self.client.receive_message, QueueUrl=dead_url, WaitTimeSeconds=wait,
                    MaxNumberOfMessages=min(MAX_BATCH, limit - len(seen)),
                    VisibilityTimeout=30))
                fresh = [m for m in response.get("Messages") or [] if m["MessageId"] not in seen]
                if not fresh:
                    break
                for message in fresh:
                    seen.add(str(message["MessageId"]))
                    if not visit(message):
                        kept.append(message)
        finally:
            self._reveal(dead_url, kept)

    def _reveal(self, url: str, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), MAX_BATCH):
            entries = [{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": 0}
                       for index, m in enumerate(messages[start:start + MAX_BATCH])]
            self._call("release dead letters", partial(
                self.client.change_message_visibility_batch, QueueUrl=url, Entries=entries))

    def purge(self) -> None:
        """Drop every message, dead letters included (SQS allows one purge a minute)."""
        for url in (self.url, self.dead_url):
            if url:
                self._call("purge", partial(self.client.purge_queue, QueueUrl=url))
