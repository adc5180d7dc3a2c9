"""Dead letters: the pipeline's messages given up after `max_attempts` failed deliveries, with
why (`facereel dead-letters`, `GET /v1/dead-letters`), and sending them back for another try
(`--redrive`, `POST /v1/dead-letters/redrive`).

The error of a dead letter is its video's: the host that gave up wrote it on the video's row
(status `dead`). On AWS Lambda in chain mode a dead letter is instead the invocation record
Lambda sent to the on-failure destination, which carries the stage's message and the error
itself; it is read (and sent back) as the message inside.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from facereel.errors import FacereelError
from facereel.pipeline.definition import STAGE_NAMES
from facereel.pipeline.wiring import Ports
from facereel.ports.metadata import VideoRecord
from facereel.ports.queue import Body, DeadLetter

MAX_LISTED = 500  # dead letters one listing shows per queue


@dataclass(frozen=True, slots=True)
class DeadMessage:
    queue: str  # the stage whose queue gave it up
    id: str
    key: str
    etag: str
    attempts: int
    error_code: str
    error_message: str
    body: Body  # the stage's message, as it will be sent back

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        code, message = doc.pop("error_code"), doc.pop("error_message")
        doc["error"] = {"code": code, "message": message} if code or message else None
        return doc


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters: of one stage's queue (None: every stage), of one video (None: any)."""

    queue: str | None = None
    key: str | None = None

    def queues(self) -> tuple[str, ...]:
        if self.queue is None:
            return STAGE_NAMES
        if self.queue not in STAGE_NAMES:
            raise FacereelError(f"no queue {self.queue!r}: the pipeline's queues are "
                                f"{', '.join(STAGE_NAMES)}", "invalid_queue")
        return (self.queue,)


def unwrap(body: Body) -> tuple[Body, int | None, str]:
    """(the stage's message, its attempts if recorded, the error if recorded) of a dead
    letter's body: a Lambda on-failure record holds the chain payload it failed on."""
    payload = body.get("requestPayload")
    if not isinstance(payload, dict) or not isinstance(payload.get("body"), dict) \
            or not isinstance(payload.get("stage"), str):
        return body, None, ""
    response = body.get("responsePayload")
    error = ""
    if isinstance(response, dict):
        error = ": ".join(str(response[k]) for k in ("errorType", "errorMessage")
                          if response.get(k))
    attempt = payload.get("attempt")
    return payload["body"], attempt if isinstance(attempt, int) else None, error


def _described(ports: Ports, queue: str, letter: DeadLetter) -> DeadMessage:
    message, attempts, error = unwrap(letter.body)
    key, etag = str(message.get("key", "")), str(message.get("etag", ""))
    record = ports.metadata.get_video(key) if key else None
    code = "stage_failed" if error else ""
    if record is not None and record.status == "dead" and (not etag or record.etag == etag):
        code, error = record.error_code, record.error_message
    return DeadMessage(queue, letter.id, key, etag, attempts or letter.attempts, code, error,
                       message)


def dead_letters(ports: Ports, selection: Selection,
                 limit: int = MAX_LISTED) -> list[DeadMessage]:
    """The dead letters `selection` names, with their errors, queue by queue in stage
    order (up to `limit` per queue)."""
    found: list[DeadMessage] = []
    for queue in selection.queues():
        for letter in ports.queues[queue].dead_letters(min(limit, MAX_LISTED)):
            described = _described(ports, queue, letter)
            if selection.key is None or described.key == selection.key:
                found.append(described)
    return found


def redrive(ports: Ports, selection: Selection) -> list[DeadMessage]:
    """Send the dead letters `selection` names back to their queues for another try (as new
    messages: each gets `max_attempts` deliveries again); a video whose row says `dead` is
    `queued` again. Answers what was sent back."""
    sent: list[DeadMessage] = []
    for queue in selection.queues():
        sent += [_described(ports, queue, letter)
                 for letter in ports.queues[queue].redrive(_chooser(selection))]
    for message in sent:
        record = ports.metadata.get_video(message.key) if message.key else None
        if record is not None and record.status == "dead" and record.etag == message.etag:
            ports.metadata.put_video(VideoRecord(message.key, message.etag, "queued",
                                                 time.time()))
    return sent


def _chooser(selection: Selection) -> Callable[[DeadLetter], Body | None]:
    def choose(letter: DeadLetter) -> Body | None:
        message, _, _ = unwrap(letter.body)
        wanted = selection.key is None or message.get("key") == selection.key
        return message if wanted else None

    return choose
