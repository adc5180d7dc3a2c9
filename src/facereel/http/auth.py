"""API keys: `Authorization: Bearer <key>`, or the session cookie the web page gets by logging
in with a key. Keys are compared in constant time. With no key configured the API is open,
which `facereel up` allows only on a loopback address."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from fastapi import Request

from facereel.http.errors import ApiError

COOKIE = "facereel_session"
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="facereel"'}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def session_token(key: str) -> str:
    """What the session cookie holds: derived from a key, not the key itself, so a cookie
    read off a browser is no Bearer key for scripts (and dies when the key is revoked)."""
    return hmac.new(key.encode(), b"facereel-session-v1", hashlib.sha256).hexdigest()


def presented_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def key_is_valid(candidate: str, secrets: list[str]) -> bool:
    """Constant-time check against every secret (no early exit on a match)."""
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(candidate.encode(), secret.encode())
    return matched and bool(candidate)


def is_authorized(request: Request, keys: list[str]) -> bool:
    """A valid Bearer key, or a session cookie made from one."""
    if not keys:
        return True
    if key_is_valid(presented_key(request), keys):
        return True
    return key_is_valid(request.cookies.get(COOKIE, ""), [session_token(k) for k in keys])


def require_key(request: Request, keys: list[str]) -> None:
    if not is_authorized(request, keys):
        raise ApiError(401, "unauthorized", "a valid API key is required "
                       "(Authorization: Bearer <key>)", UNAUTHORIZED_HEADERS)
