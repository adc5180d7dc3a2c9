"""API keys: `Authorization: Bearer <key>`, or the session cookie the web page gets by logging
in with a key. Keys are compared in constant time. With no key configured the API is open,
which `facereel up` allows only on a loopback address."""

from __future__ import annotations

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


def presented_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.cookies.get(COOKIE, "")


def key_is_valid(candidate: str, keys: list[str]) -> bool:
    """Constant-time check against every configured key (no early exit on a match)."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate.encode(), key.encode())
    return matched and bool(candidate)


def require_key(request: Request, keys: list[str]) -> None:
    if not keys:
        return
    if not key_is_valid(presented_key(request), keys):
        raise ApiError(401, "unauthorized", "a valid API key is required "
                       "(Authorization: Bearer <key>)", UNAUTHORIZED_HEADERS)
