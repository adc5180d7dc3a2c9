"""Browsing what the pipeline did: videos and their published results by status, person and
time, a page at a time (`GET /v1/videos`, `GET /v1/results`, `facereel videos`, `facereel
results`).

A page ends with an opaque cursor, `next`, that names where the listing stands (the last row's
time and key), not how many rows came before: rows written meanwhile are newer, land before
it, and never shift or repeat the rows that follow. A cursor is checked before any read: a
forged or damaged one is a `invalid_cursor` error, never a crash or a scan.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from facereel.errors import FacereelError
from facereel.ports.metadata import (
    RESULT_STATUSES,
    VIDEO_STATUSES,
    MetadataStore,
    Position,
    VideoQuery,
    VideoRecord,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR = 4096  # characters: an object key is at most 1024 bytes (~1.4 kB in base64)
MAX_PERSON = 256
OLD_SPELLINGS = {"recognizing": "recognising"}  # rows of earlier releases say `recognising`
# listing -> (the statuses it may be filtered by, what it lists unfiltered: () is every row)
LISTINGS = {"videos": (VIDEO_STATUSES, ()), "results": (RESULT_STATUSES, RESULT_STATUSES)}


class BrowseError(FacereelError):
    """A listing asked for something it cannot answer (a bad cursor, status or time)."""

    code = "invalid_request"


@dataclass(frozen=True, slots=True)
class Filters:
    statuses: tuple[str, ...] = ()  # any of these (empty: every status the listing covers)
    person: str | None = None
    since: datetime | None = None  # naive times are UTC
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Listing:
    items: list[dict[str, Any]]
    next: str | None  # the cursor of the next page, None when this one is the last


# ---- cursors --------------------------------------------------------------------------------
def encode_cursor(listing: str, at: float, name: str) -> str:
    """An opaque cursor for `listing` standing after the row at (`at`, `name`)."""
    text = json.dumps({"of": listing, "at": at, "after": name}, separators=(",", ":"),
                      ensure_ascii=False)  # UTF-8 is shorter than \u escapes
    raw = text.encode("utf-8", "surrogatepass")  # a folder bucket's undecodable names too
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str) -> tuple[float, str]:
    """(time, name) of a cursor `encode_cursor(listing, ...)` made, or BrowseError."""
    bad = BrowseError("invalid cursor: pass a page's `next` as it was given", "invalid_cursor")
    if not 0 < len(cursor) <= MAX_CURSOR:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw.decode("utf-8", "surrogatepass"))
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(data, dict) or set(data) != {"of", "at", "after"}:
        raise bad
    at, name = data["at"], data["after"]
    if data["of"] != listing:
        raise BrowseError(f"invalid cursor: it continues a listing of {data['of']!r}, "
                          f"not of {listing!r}", "invalid_cursor")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at) \
            or not isinstance(name, str):
        raise bad
    return float(at), name


# ---- filters --------------------------------------------------------------------------------
def parse_time(text: str) -> datetime:
    """An ISO-8601 time (`2025-01-31`, `2025-01-31T08:00`, `...+01:00`, `...Z`); UTC when
    it names no zone."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise BrowseError(f"invalid time {text!r}: use ISO-8601, e.g. 2025-01-31T08:00:00Z",
                          "invalid_time") from None


def epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def iso(seconds: float) -> str:
    """`2025-01-31T08:00:00.250Z`: UTC, to the millisecond."""
    moment = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")


def _statuses(asked: Iterable[str], allowed: tuple[str, ...]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(asked))
    unknown = [s for s in wanted if s not in allowed]
    if unknown:
        raise BrowseError(f"unknown status {', '.join(map(repr, unknown))}: use one of "
                          f"{', '.join(allowed)}", "invalid_status")
    return tuple(wanted) + tuple(OLD_SPELLINGS[s] for s in wanted if s in OLD_SPELLINGS)


def video_query(filters: Filters, listing: str, limit: int,
                after: Position | None) -> VideoQuery:
    """The store's query for a listing's filters, checked (BrowseError when wrong)."""
    allowed, default = LISTINGS[listing]
    since, until = epoch(filters.since), epoch(filters.until)
    if since is not None and until is not None and since > until:
        raise BrowseError("since is after until: nothing can lie between them", "invalid_time")
    if filters.person is not None and not 0 < len(filters.person) <= MAX_PERSON:
        raise BrowseError(f"a person's name has 1 to {MAX_PERSON} characters", "invalid_person")
    if not 1 <= limit <= MAX_LIMIT:
        raise BrowseError(f"limit must be between 1 and {MAX_LIMIT}", "invalid_limit")
    statuses = _statuses(filters.statuses, allowed) if filters.statuses else default
    return VideoQuery(statuses, filters.person, since, until, after, limit)


# ---- listings -------------------------------------------------------------------------------
def video_item(record: VideoRecord) -> dict[str, Any]:
    """A row as listings show it (the metadata table's record, times in ISO-8601)."""
    item: dict[str, Any] = {
        "key": record.key, "etag": record.etag, "status": record.status,
        "updated": iso(record.updated), "people": record.people,
        "error": {"code": record.error_code, "message": record.error_message}
        if record.error_code else None,
        "result_key": record.result_key or None,
        "result": "/v1/results/" + quote(record.key) if record.result_key else None}
    return item


def browse(metadata: MetadataStore, listing: str, filters: Filters,
           limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Listing:
    """One page of `videos` (every row) or `results` (rows whose result was published:
    done or error), newest first."""
    after = Position(*decode_cursor(listing, cursor)) if cursor else None
    page = metadata.list_videos(video_query(filters, listing, limit, after))
    following = encode_cursor(listing, page.next.updated, page.next.key) if page.next else None
    return Listing([video_item(r) for r in page.records], following)
