"""API keys and browser sessions.

Scripts send `Authorization: Bearer <key>`. The web page exchanges a key at `POST /v1/session`
for a session: a random token (in an http-only, same-site cookie) that this server remembers
and forgets at logout, after `SESSION_TTL_S`, or as soon as the key it was opened with is no
longer configured. Keys are compared in constant time. With no key configured the API is
open, which `facereel up` allows only on a loopback address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "facereel_session"
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="facereel"'}
SESSION_TTL_S = 12 * 3600.0
MAX_SESSIONS = 10000  # the oldest are forgotten first: a login flood cannot grow memory


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer(authorization: str) -> str:
    """The key of an `Authorization: Bearer <key>` header ("" for anything else)."""
    return authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""


def key_is_valid(candidate: str, secrets_: list[str]) -> bool:
    """Constant-time check against every secret (no early exit on a match)."""
    matched = False
    for secret in secrets_:
        matched |= hmac.compare_digest(candidate.encode(), secret.encode())
    return matched and bool(candidate)


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    key_fingerprint: str  # which configured key opened it
    expires: float


class Sessions:
    """The browser sessions this server has opened (kept in memory: a restart logs everyone
    out, which is the safe direction)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def open(self, key: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[token] = Session(fingerprint(key), self._clock() + SESSION_TTL_S)
        return token

    def valid(self, token: str, keys: list[str]) -> bool:
        if not token:
            return False
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and session.expires <= self._clock():
                del self._sessions[token]
                session = None
        if session is None:
            return False
        return key_is_valid(session.key_fingerprint, [fingerprint(k) for k in keys])

    def revoke(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who a request says it is: a Bearer key, a session cookie, or nothing."""

    key: str
    session: str

    def via(self, keys: list[str], sessions: Sessions) -> str | None:
        """`key`, `session` or `open` when the request is allowed; None when it is not."""
        if not keys:
            return "open"
        if key_is_valid(self.key, keys):
            return "key"
        if sessions.valid(self.session, keys):
            return "session"
        return None
