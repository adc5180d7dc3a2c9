"""The door of the HTTP API: an ASGI middleware that decides on a request from its headers,
before a byte of its body is read.

- **Authentication** first: a request to anything but the public routes without a valid key or
  session is answered 401 at once (a 1 GB body sent without a key is never read), and one
  whose key lacks the route's scope (`auth.route_scope`: a read key searching the face
  memory, say) 403, just as early.
- **Size**: each route has a body limit (uploads: the configured upload size; everything else,
  JSON: 64 KB). A declared `Content-Length` over it is 413 at once; a body without one (chunked)
  is counted as it streams and stopped at the limit with 413.
- **Time**: a body must keep arriving: a pause longer than `body_idle_s` (30 s) between chunks
  is 408.
- **Cross-site requests**: a state-changing request authenticated by the session cookie (which
  a browser attaches to requests another site makes it send) must come from this server's own
  page: its `Origin` (or `Referer`) must name this host, else 403. Bearer keys are not sent by
  browsers on their own, so they need no such check.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from facereel.http.auth import (
    COOKIE,
    UNAUTHORIZED_HEADERS,
    Credentials,
    Sessions,
    bearer,
    route_scope,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_LIMIT = 64 * 1024
FRAMING = 64 * 1024  # multipart boundaries and part headers around an upload
BODY_IDLE_S = 30.0
MAX_PHOTOS = 20
PUBLIC = {("GET", "/healthz"), ("GET", "/"), ("POST", "/v1/session"), ("HEAD", "/healthz")}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
FACES = re.compile(r"^/v1/people/[^/]+/faces$")


@dataclass(frozen=True, slots=True)
class DoorPolicy:
    keys: Callable[[], list[tuple[str, str]]]  # (key, scope)
    sessions: Sessions
    max_video_bytes: int
    max_image_bytes: int
    on_refused: Callable[[str, int], None] = lambda method, status: None
    body_idle_s: float = BODY_IDLE_S

    def body_limit(self, method: str, path: str) -> int:
        if method == "POST" and path == "/v1/videos":
            return self.max_video_bytes + FRAMING
        if method == "POST" and path in ("/v1/images", "/"):
            return self.max_image_bytes + FRAMING
        if method == "POST" and FACES.match(path):
            return MAX_PHOTOS * self.max_image_bytes + FRAMING
        if method == "POST" and path == "/v1/search":  # a photo, maybe base64 in JSON
            return self.max_image_bytes * 4 // 3 + FRAMING
        return JSON_LIMIT


class BodyTooLargeError(Exception):
    pass


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _cookie(header: str) -> str:
    try:
        jar = SimpleCookie(header)
    except CookieError:
        return ""
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else ""


def same_origin(headers: dict[str, str]) -> bool:
    """Whether the request names this host as its origin (what a browser sends with any
    request a page makes, and another site's page cannot fake)."""
    source = headers.get("origin") or headers.get("referer") or ""
    host = headers.get("host", "")
    return bool(source) and bool(host) and urlsplit(source).netloc.lower() == host.lower()


async def respond(send: Send, status: int, code: str, message: str,
                  headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           (b"connection", b"close")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    def __init__(self, app: ASGIApp, policy: DoorPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        headers = _headers(scope)
        refusal = self._refusal(method, path, headers)
        if refusal is not None:
            self.policy.on_refused(method, refusal[0])
            await respond(send, *refusal)
            return
        await self._limited(scope, receive, send, self.policy.body_limit(method, path))

    def _refusal(self, method: str, path: str,
                 headers: dict[str, str]) -> tuple[int, str, str, dict[str, str]] | None:
        """What to answer before reading anything, or None to let the request in."""
        if (method, path) not in PUBLIC:
            credentials = Credentials(bearer(headers.get("authorization", "")),
                                      _cookie(headers.get("cookie", "")))
            identity = credentials.identify(self.policy.keys(), self.policy.sessions)
            if identity is None:
                return (401, "unauthorized", "a valid API key is required (Authorization: "
                        "Bearer <key>)", UNAUTHORIZED_HEADERS)
            if identity.session and method in UNSAFE and not same_origin(headers):
                return (403, "cross_origin", "a request made with the session cookie must "
                        "come from this server's own page (Origin mismatch)", {})
            needed = route_scope(method, path)
            if not identity.allows(needed):
                return (403, "forbidden", f"this key's scope is {identity.scope}: {method} "
                        f"{path} needs {needed}", {})
        limit = self.policy.body_limit(method, path)
        declared = headers.get("content-length", "")
        if declared and (not declared.isdigit() or int(declared) > limit):
            return (413, "too_large", f"request body larger than the {limit} bytes this "
                    "route accepts", {})
        return None

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app with a body counted as it streams; past `limit` the app's own answer
        (whatever the parser made of the cut body) is replaced by a 413."""
        state = {"read": 0, "done": False, "refused": 0, "started": False}

        async def counted() -> Message:
            if state["done"]:
                return await receive()  # waiting for a disconnect may take as long as it takes
            try:
                message = await asyncio.wait_for(receive(), self.policy.body_idle_s)
            except TimeoutError:
                state["refused"] = 408
                raise BodyTooLargeError("request body stalled") from None
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                state["done"] = not message.get("more_body", False)
                if state["read"] > limit:
                    state["refused"] = 413
                    raise BodyTooLargeError("request body too large")
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return  # the app's answer to a cut body is replaced below
            state["started"] = True
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not state["refused"]:
                raise
            # the app failed on the body we cut (however its parser reported that): ours
        if state["refused"] and not state["started"]:
            status = int(state["refused"])
            self.policy.on_refused(scope["method"], status)
            await respond(send, status, "too_large" if status == 413 else "timeout",
                          f"request body larger than the {limit} bytes this route accepts"
                          if status == 413 else
                          f"request body stalled for {self.policy.body_idle_s:g} s")
