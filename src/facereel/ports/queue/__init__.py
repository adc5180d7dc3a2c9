"""Queue: durable, at-least-once message delivery between pipeline stages.

A received message is hidden for a visibility timeout; the consumer `ack`s it when done, or
it reappears (after a crash, the timeout; after `retry`, a backoff delay). A message delivered
`max_attempts` times without an ack goes to the dead letters instead of being delivered again,
where it waits for a person: `redrive` sends it back.
Bodies are small JSON objects: object keys and ids, never pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    body: Body
    receipt: str  # proves this delivery; an ack with an outdated receipt is ignored
    attempts: int  # deliveries so far, this one included


@dataclass(frozen=True, slots=True)
class QueueDepth:
    visible: int  # waiting to be received
    in_flight: int  # received, not yet acknowledged
    delayed: int  # waiting for a retry backoff or a delayed send
    dead: int  # given up after max_attempts


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message given up after `attempts` deliveries, as the dead letters keep it."""

    id: str
    body: Body
    attempts: int


# What to send back of a dead letter (its body, or another), or None to leave it dead.
Redrive = Callable[[DeadLetter], Body | None]


class Queue(Protocol):
    name: str
    visibility_s: float  # how long a received message stays hidden without an ack
    max_attempts: int  # deliveries before a message goes to the dead letters

    def send(self, body: Body, delay_s: float = 0.0) -> str: ...

    def receive(self, max_messages: int = 1, wait_s: float = 0.0) -> list[Message]: ...

    def ack(self, message: Message) -> None: ...

    def retry(self, message: Message, delay_s: float) -> None: ...

    def extend(self, message: Message, visibility_s: float) -> None: ...

    def depth(self) -> QueueDepth: ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Up to `limit` dead letters, oldest first where the backend knows; looking leaves
        them where they are."""
        ...

    def redrive(self, select: Redrive) -> list[DeadLetter]:
        """Give dead letters another try: each one `select` answers a body for leaves the
        dead letters and that body is sent as a new message (no deliveries yet); the others
        stay. Answers the dead letters sent back."""
        ...


def backoff_s(attempts: int, base_s: float = 2.0, cap_s: float = 300.0) -> float:
    """Retry delay after the given number of failed deliveries: 2, 4, 8 ... seconds."""
    return float(min(cap_s, base_s * 2 ** max(0, attempts - 1)))
