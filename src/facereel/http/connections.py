"""Connections that have not yet sent their request headers cannot hold the server.

uvicorn keeps a connection that says nothing open for as long as the client likes, and counts
it against `limit_concurrency`: 4200 idle connections made `/healthz` answer 503 to everyone.
Here a connection must complete its request headers within `HEADER_TIMEOUT_S`, and at most
`MAX_PENDING` connections may be waiting for headers at once: a new one past that closes the
oldest waiting one. Nothing is counted per address: legitimate load (and every test) comes
from 127.0.0.1 too.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0
MAX_PENDING = 512


class PendingHeaders:
    """The connections of one server still waiting for their request headers, oldest first."""

    def __init__(self, timeout_s: float = HEADER_TIMEOUT_S, limit: int = MAX_PENDING) -> None:
        self.timeout_s = timeout_s
        self.limit = limit
        self.waiting: OrderedDict[int, GuardedH11Protocol] = OrderedDict()
        self.closed_for_timeout = 0
        self.closed_for_room = 0

    def add(self, protocol: GuardedH11Protocol) -> None:
        self.waiting[id(protocol)] = protocol
        while len(self.waiting) > self.limit:
            _, oldest = self.waiting.popitem(last=False)
            self.closed_for_room += 1
            oldest.drop()

    def discard(self, protocol: GuardedH11Protocol) -> None:
        self.waiting.pop(id(protocol), None)


class GuardedH11Protocol(H11Protocol):
    pending: PendingHeaders = PendingHeaders()  # replaced per server by `protocol_for`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def _await_headers(self) -> None:
        self.pending.add(self)
        self._header_timer = self.loop.call_later(self.pending.timeout_s, self._too_slow)

    def _headers_done(self) -> None:
        self.pending.discard(self)
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self.pending.closed_for_timeout += 1
        self.drop()

    def drop(self) -> None:
        self._headers_done()
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None and self.conn.their_state is not h11.IDLE:
            self._headers_done()  # the request line and headers are in

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # a kept-alive connection waits for its next request's headers under the same rules
        if not self.transport.is_closing() and self._header_timer is None:
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)


def protocol_for(pending: PendingHeaders) -> type[GuardedH11Protocol]:
    """A protocol class whose connections share one server's `pending` bookkeeping."""
    return type("ServerH11Protocol", (GuardedH11Protocol,), {"pending": pending})
