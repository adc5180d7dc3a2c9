"""API keys, their scopes, and browser sessions.

Keys have scopes (`FACEREEL_API_KEYS=k1:read,k2:write,k3:admin`): `read` may GET, `write`
may also upload, enrol and edit people (naming, merging and splitting groups of strangers),
`admin` may also search the face memory, forget and list the strangers (they reach every
face ever seen). A bare key is `write`: what every key could do before scopes existed.
With no key configured the API is open (loopback only) and everything is allowed.
`route_scope` says what each route needs; the guard checks it before reading a body, and
every route checks it again.

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

from facereel.config.sections import SCOPES

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
        return self.opened_with(token, keys) is not None

    def opened_with(self, token: str, keys: list[str]) -> str | None:
        """The fingerprint of the key a live session was opened with (None: no such session,
        or its key is no longer configured)."""
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and session.expires <= self._clock():
                del self._sessions[token]
                session = None
        if session is None or not key_is_valid(session.key_fingerprint,
                                               [fingerprint(k) for k in keys]):
            return None
        return session.key_fingerprint

    def revoke(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)


# search, forget and the listing of strangers reach every face ever seen
ADMIN_ROUTES = {("POST", "/v1/search"), ("POST", "/v1/forget"), ("GET", "/v1/strangers")}
READ_METHODS = {"GET", "HEAD"}


def route_scope(method: str, path: str) -> str:
    """The scope a request needs: admin for the face memory's search and forget, read for
    GET (and for logging out), write for everything else that changes something."""
    if (method, path.rstrip("/") or "/") in ADMIN_ROUTES:
        return "admin"
    if method in READ_METHODS or (method, path) == ("DELETE", "/v1/session"):
        return "read"
    return "write"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request is (for the audit log: a key's fingerprint, never the key) and what its
    key may do."""

    who: str  # `key:<first 12 hex of the key's sha256>`, or `open` (no keys configured)
    scope: str
    session: bool = False  # authenticated by the session cookie (browsers attach it alone)

    def allows(self, needed: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(needed)


def _scope_of(candidate: str, keys: list[tuple[str, str]], compare: str = "key") -> str:
    """The scope of the configured key `candidate` is (or whose fingerprint it is), checked
    against every key in constant time; "" for none."""
    found = ""
    for key, scope in keys:
        secret = key if compare == "key" else fingerprint(key)
        if hmac.compare_digest(candidate.encode(), secret.encode()) and candidate:
            found = scope
    return found


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

    def identify(self, keys: list[tuple[str, str]], sessions: Sessions) -> Identity | None:
        """Who the request is and what it may do; None when it is not allowed in at all."""
        if not keys:
            return Identity("open", "admin")
        scope = _scope_of(self.key, keys)
        if scope:
            return Identity(f"key:{fingerprint(self.key)[:12]}", scope)
        opened = sessions.opened_with(self.session, [key for key, _ in keys])
        if opened is None:
            return None
        return Identity(f"key:{opened[:12]}", _scope_of(opened, keys, "fingerprint"),
                        session=True)
