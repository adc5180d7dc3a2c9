"""MetadataStore: people's records (`name`, `major`, `year`, ...) keyed by name, and one status
row per input video (keyed by its object key) that the pipeline keeps up to date."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from facereel.errors import FacereelError

PersonRecord = dict[str, Any]

# Video statuses: queued -> processing (split, windows) -> recognizing -> done | error (an error
# record was published) | dead (the pipeline gave up after repeated failures: see the dead
# letters). Rows written before the stage was spelled `recognize` may say `recognising`.
VIDEO_STATUSES = ("queued", "processing", "recognizing", "done", "error", "dead")
STORED_STATUSES = (*VIDEO_STATUSES, "recognising")  # what a row may hold
RESULT_STATUSES = ("done", "error")  # a result document was published
MAX_PAGE = 1000  # rows one listing call answers at most


@dataclass(slots=True)
class VideoRecord:
    key: str  # the input object's key
    etag: str  # which content this row describes
    status: str
    updated: float  # seconds since the epoch
    result_key: str = ""  # `<stem>.json` in the output bucket, once published
    people: list[str] = field(default_factory=list)
    error_code: str = ""
    error_message: str = ""

    @property
    def position(self) -> Position:
        return Position(self.updated, self.key)

    def to_item(self) -> dict[str, Any]:
        return {"key": self.key, "etag": self.etag, "status": self.status,
                "updated": self.updated, "result_key": self.result_key, "people": self.people,
                "error_code": self.error_code, "error_message": self.error_message}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> VideoRecord:
        return cls(key=str(item["key"]), etag=str(item.get("etag", "")),
                   status=str(item.get("status", "queued")),
                   updated=float(item.get("updated", 0.0)),
                   result_key=str(item.get("result_key", "")),
                   people=[str(p) for p in item.get("people") or []],
                   error_code=str(item.get("error_code", "")),
                   error_message=str(item.get("error_message", "")))


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A row's place in a listing: newest `updated` first, equal times by `key` descending.
    A page's `next` is the position of its last row; the next page starts after it, so rows
    written meanwhile (which are newer) never shift or repeat what follows."""

    updated: float
    key: str


@dataclass(frozen=True, slots=True)
class VideoQuery:
    """Which rows to list: every condition given must hold."""

    statuses: tuple[str, ...] = ()  # any of these (empty: every status)
    person: str | None = None  # rows whose `people` name this person
    since: float | None = None  # updated at or after (seconds since the epoch)
    until: float | None = None  # updated at or before
    after: Position | None = None  # only rows after this position (a page's `next`)
    limit: int = 50

    @property
    def size(self) -> int:
        return max(1, min(self.limit, MAX_PAGE))

    def admits(self, record: VideoRecord) -> bool:
        """Whether `record` answers this query (backends that cannot filter everything in
        the store itself check the rest with this)."""
        return ((not self.statuses or record.status in self.statuses)
                and (self.person is None or self.person in record.people)
                and (self.since is None or record.updated >= self.since)
                and (self.until is None or record.updated <= self.until)
                and (self.after is None or record.position < self.after))


@dataclass(frozen=True, slots=True)
class VideoPage:
    records: list[VideoRecord]
    next: Position | None = None  # where the next page starts; None: nothing more


def page_of(newest_first: list[VideoRecord], size: int) -> VideoPage:
    """A page from up to `size + 1` rows in listing order (one more than fits says whether
    another page follows)."""
    if len(newest_first) <= size:
        return VideoPage(newest_first)
    rows = newest_first[:size]
    return VideoPage(rows, rows[-1].position)


class MetadataStore(Protocol):
    def describe(self) -> str: ...

    def put_people(self, records: Iterable[PersonRecord]) -> int: ...

    def get_person(self, name: str) -> PersonRecord | None: ...

    def list_people(self) -> list[PersonRecord]: ...

    def delete_person(self, name: str) -> bool: ...

    def put_video(self, record: VideoRecord) -> None: ...

    def get_video(self, key: str) -> VideoRecord | None: ...

    def list_videos(self, query: VideoQuery) -> VideoPage:
        """One page of rows answering `query`, newest first (see `Position`), from an index:
        never a scan of the table. A page holds at most `query.size` rows; it may hold fewer
        while `next` is set (a backend bounds what one call reads), and `next` is None only
        when nothing more answers the query. A row that names people is found by each of
        them (`query.person`)."""
        ...

    def video_counts(self) -> dict[str, int]: ...

    def mark_window(self, key: str, etag: str, window: int) -> tuple[int, bool]:
        """Record that `window` of this content of `key` has been analysed; answers how many
        distinct windows are done and whether this call added one (marking twice counts
        once), atomically across processes: the join of a video's windows."""
        ...


class MetadataLookup:
    """Person name -> metadata fields (without the name), read fresh from the store."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def __call__(self, name: str) -> dict[str, Any] | None:
        record = self.store.get_person(name)
        if record is None:
            return None
        return {k: v for k, v in record.items() if k != "name"}


def read_people_json(path: Path) -> list[PersonRecord]:
    """Records of a `student_data.json`-style file: a list of objects, each with a `name`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FacereelError(f"cannot read {path}: {exc.strerror}", "unreadable") from exc
    except json.JSONDecodeError as exc:
        raise FacereelError(f"{path}: not valid JSON ({exc})", "bad_metadata") from exc
    if not isinstance(data, list):
        raise FacereelError(f"{path}: expected a JSON list of records", "bad_metadata")
    records = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not str(item.get("name", "")).strip():
            raise FacereelError(f"{path}: record {index} has no 'name'", "bad_metadata")
        records.append({**item, "name": str(item["name"]).strip()})
    return records
