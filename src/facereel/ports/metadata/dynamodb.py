"""DynamoMetadata: the MetadataStore port over DynamoDB tables (their keys and indexes are
declared in `dynamo_schema`).

The people table has the string hash key `name`, exactly like the original coursework's
student table, so an existing table can be used as is; the videos table is keyed by the
input object's `key`. Records round-trip like `SqliteMetadata`: DynamoDB has no float type
and hands numbers back as `Decimal`, so floats are stored as exact decimals and numbers come
back as `int` when integral, else `float` (so `2.0` may come back as `2`). Reads of a row are
strongly consistent, so a record is visible right after it is written, as with SQLite.

Listings query indexes, never scan: the videos table's global index by-status (status,
updated) gives each status newest first, merged across the statuses asked for; the person
filter reads the person-videos table (one item per person a row names, written with the
row) through its local index by-updated, then checks each row it points to, so an item left
behind by a row that no longer names the person is skipped. A global index is eventually
consistent: a row may reach a listing a moment after it is written. Counting videos still
reads the status of every row.

Either a boto3 DynamoDB resource (as `make_dynamo` returns) or a client works (see
`dynamo_client`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import boto3

from facereel.ports.aws import BOTO_ERRORS, boto_config, classify_boto_error
from facereel.ports.metadata import (
    STORED_STATUSES,
    PersonRecord,
    Position,
    VideoPage,
    VideoQuery,
    VideoRecord,
    page_of,
)
from facereel.ports.metadata.dynamo_client import (
    ClientTable,
    Item,
    MetadataError,
    batch_get,
    from_dynamo,
    to_dynamo,
)
from facereel.ports.metadata.dynamo_schema import PERSON_VIDEOS_BY_UPDATED, VIDEOS_BY_STATUS

__all__ = ["DynamoMetadata", "MetadataError", "from_dynamo", "make_dynamo", "to_dynamo"]
T = TypeVar("T")
MAX_EXAMINED = 2000  # person-videos items one listing call checks at most
# how DynamoDB (ValidationException) and moto (ResourceNotFoundException) say an index is missing
MISSING_INDEX = ("does not have the specified index", "Invalid index")


def make_dynamo(endpoint_url: str | None, region: str | None, access_key: str | None,
                secret_key: str | None) -> Any:
    """A boto3 DynamoDB resource with bounded retries and timeouts."""
    return boto3.resource("dynamodb", endpoint_url=endpoint_url or None,
                          region_name=region or ("us-east-1" if endpoint_url else None),
                          aws_access_key_id=access_key or None,
                          aws_secret_access_key=secret_key or None, config=boto_config())


class DynamoMetadata:
    """People and video status records in DynamoDB."""

    def __init__(self, resource_or_client: Any, people_table: str, videos_table: str,
                 windows_table: str = "facereel-windows",
                 person_videos_table: str = "facereel-person-videos") -> None:
        """The tables must exist (`facereel provision` creates them); a missing one is
        reported on first use as `metadata_missing_table`."""
        is_resource = hasattr(resource_or_client, "Table")
        self.client = resource_or_client.meta.client if is_resource else resource_or_client
        self.people_table, self.videos_table = people_table, videos_table
        self.windows_table, self.person_videos_table = windows_table, person_videos_table

        def table(name: str) -> Any:
            return resource_or_client.Table(name) if is_resource else \
                ClientTable(resource_or_client, name)

        self._people, self._videos = table(people_table), table(videos_table)
        self._windows = table(windows_table)
        self._person_videos = table(person_videos_table)

    def describe(self) -> str:
        return (f"dynamodb tables {self.people_table}, {self.videos_table} at "
                f"{self.client.meta.endpoint_url}")

    def _call(self, action: str, operation: Callable[[], T]) -> T:
        """Run one DynamoDB operation, turning any boto failure into a MetadataError."""
        try:
            return operation()
        except BOTO_ERRORS as exc:
            kind, detail = classify_boto_error(exc)
            code = {"denied": "metadata_denied", "unreachable": "metadata_unreachable",
                    "no_container": "metadata_missing_table"}.get(kind, "metadata_error")
            if any(words in detail for words in MISSING_INDEX):  # provisioned before it existed
                code = "metadata_missing_index"
            hint = {"metadata_missing_table": " (create the tables with `facereel provision`)",
                    "metadata_missing_index": " (add it with `facereel provision --fix`)"}
            raise MetadataError(f"cannot {action} in dynamodb: {detail}{hint.get(code, '')}",
                                code) from exc

    def _scan(self, table: Any, **options: Any) -> Iterator[Item]:
        """Every item of a scan, following pages (1 MB each)."""
        while True:
            response = table.scan(ConsistentRead=True, **options)
            yield from response.get("Items") or []
            if not response.get("LastEvaluatedKey"):
                return
            options["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # ---- people -------------------------------------------------------------------------
    def put_people(self, records: Iterable[PersonRecord]) -> int:
        items = [to_dynamo(dict(record)) for record in records]
        for item in items:
            if not isinstance(item.get("name"), str) or not item["name"]:
                raise MetadataError(f"person record without a 'name': {item!r}",
                                    "bad_metadata")

        def write() -> None:
            with self._people.batch_writer(overwrite_by_pkeys=["name"]) as batch:
                for item in items:
                    batch.put_item(Item=item)

        self._call(f"write people to {self.people_table}", write)
        return len(items)

    def get_person(self, name: str) -> PersonRecord | None:
        response = self._call(f"read {name!r} from {self.people_table}", lambda: (
            self._people.get_item(Key={"name": name}, ConsistentRead=True)))
        item = response.get("Item")
        return dict(from_dynamo(item)) if item else None

    def list_people(self) -> list[PersonRecord]:
        items = self._call(f"list {self.people_table}", lambda: list(self._scan(self._people)))
        return sorted((dict(from_dynamo(i)) for i in items), key=lambda r: str(r["name"]))

    def delete_person(self, name: str) -> bool:
        response = self._call(f"delete {name!r} from {self.people_table}", lambda: (
            self._people.delete_item(Key={"name": name}, ReturnValues="ALL_OLD")))
        return bool(response.get("Attributes"))

    # ---- videos -------------------------------------------------------------------------
    def put_video(self, record: VideoRecord) -> None:
        """The row, then one person-videos item per person it names (after the row, so an
        item never points at a row that does not name its person yet; one that no longer
        does is skipped by listings)."""
        item = to_dynamo(record.to_item())
        self._call(f"write {record.key!r} to {self.videos_table}",
                   lambda: self._videos.put_item(Item=item))
        for person in dict.fromkeys(record.people):
            entry = {"person": person, "key": record.key, "updated": item["updated"]}
            self._call(f"index {record.key!r} under {person!r} in {self.person_videos_table}",
                       partial(self._person_videos.put_item, Item=entry))

    def index_people(self) -> int:
        """Write the person-videos items of every row that names people (a table created for
        rows written before it existed); answers how many. A scan: provisioning's, once."""
        rows = self._call(f"read {self.videos_table}", lambda: list(self._scan(
            self._videos, ProjectionExpression="#k, #u, #p",
            ExpressionAttributeNames={"#k": "key", "#u": "updated", "#p": "people"})))
        written = 0
        for row in rows:
            for person in dict.fromkeys(str(p) for p in row.get("people") or []):
                entry = {"person": person, "key": row["key"], "updated": row["updated"]}
                self._call(f"index {row['key']!r} under {person!r}",
                           partial(self._person_videos.put_item, Item=entry))
                written += 1
        return written

    def get_video(self, key: str) -> VideoRecord | None:
        response = self._call(f"read {key!r} from {self.videos_table}", lambda: (
            self._videos.get_item(Key={"key": key}, ConsistentRead=True)))
        item = response.get("Item")
        return VideoRecord.from_item(from_dynamo(item)) if item else None

    # ---- listings -----------------------------------------------------------------------
    def list_videos(self, query: VideoQuery) -> VideoPage:
        if query.person is not None:
            return self._list_by_person(query, query.person)
        want, found = query.size + 1, list[VideoRecord]()
        for status in query.statuses or STORED_STATUSES:  # each status newest first, merged
            items, _ = self._call(f"list {status} videos of {self.videos_table}", partial(
                self._newest, self._videos, VIDEOS_BY_STATUS, ("status", status), query, want))
            found += [VideoRecord.from_item(from_dynamo(i)) for i in items]
        found.sort(key=lambda r: r.position, reverse=True)
        return page_of(found, query.size)

    def _list_by_person(self, query: VideoQuery, person: str) -> VideoPage:
        """From the person's index, newest first; each item's row is read (in batches) and
        kept if it still names the person. Reads at most MAX_EXAMINED items per call."""
        want, found = query.size + 1, list[tuple[Position, VideoRecord]]()
        frontier, examined, more = query.after, 0, True
        while more and len(found) < want and examined < MAX_EXAMINED:
            batch = replace(query, after=frontier)
            items, more = self._call(f"list the videos of {person!r}", partial(
                self._newest, self._person_videos, PERSON_VIDEOS_BY_UPDATED,
                ("person", person), batch, want - len(found), consistent=True))
            rows = self._rows([str(i["key"]) for i in items])
            checks = replace(query, since=None, until=None, after=None)  # by the index
            for item in items:
                row = rows.get(str(item["key"]))
                if row is not None and checks.admits(row):
                    found.append((_position(item), row))
            examined += len(items)
            frontier = _position(items[-1]) if items else frontier
        if len(found) > query.size:
            return VideoPage([row for _, row in found[:query.size]], found[query.size - 1][0])
        return VideoPage([row for _, row in found], frontier if more else None)

    def _rows(self, keys: list[str]) -> dict[str, VideoRecord]:
        items = self._call(f"read videos from {self.videos_table}", lambda: batch_get(
            self.client, self.videos_table, "key", keys))
        return {str(i["key"]): VideoRecord.from_item(from_dynamo(i)) for i in items}

    def _newest(self, table: Any, index: str, partition: tuple[str, str], query: VideoQuery,
                want: int, consistent: bool = False) -> tuple[list[Item], bool]:
        """At least `want` items (when there are) of one index partition that come after
        `query.after` within since..until, in listing order, and whether more may follow.
        Equal times are ordered by key here (an index leaves them in no order), so reading
        goes on past `want` until the time changes."""
        options = _key_condition(index, partition, query)
        if options is None:
            return [], False
        options.update(ScanIndexForward=False, Limit=want + 1, ConsistentRead=consistent)
        items: list[Item] = []
        while True:
            response = table.query(**options)
            page = response.get("Items") or []
            items += [i for i in page if query.after is None or _position(i) < query.after]
            last = response.get("LastEvaluatedKey")
            if not last or (len(items) >= want and page
                            and _position(page[-1]).updated < _position(items[want - 1]).updated):
                items.sort(key=_position, reverse=True)
                return items, bool(last)
            options["ExclusiveStartKey"] = last

    def mark_window(self, key: str, etag: str, window: int) -> tuple[int, bool]:
        """One atomic ADD to a number set: concurrent windows never lose each other."""
        response = self._call(f"mark window {window} of {key!r} in {self.windows_table}",
                              lambda: self._windows.update_item(
                                  Key={"video": f"{etag}/{key}"},
                                  UpdateExpression="ADD windows :w",
                                  ExpressionAttributeValues={":w": {window}},
                                  ReturnValues="ALL_OLD"))
        before = {int(w) for w in (response.get("Attributes") or {}).get("windows") or ()}
        return len(before | {window}), window not in before

    def video_counts(self) -> dict[str, int]:
        """Videos per status, reading only the status attribute of each row."""
        items = self._call(f"count {self.videos_table}", lambda: list(self._scan(
            self._videos, ProjectionExpression="#s", ExpressionAttributeNames={"#s": "status"})))
        return dict(Counter(str(i.get("status", "")) for i in items))


def _position(item: Item) -> Position:
    return Position(float(item["updated"]), str(item["key"]))


def _key_condition(index: str, partition: tuple[str, str], query: VideoQuery) -> Item | None:
    """A Query of one partition of `index` between `since` and `until` (and not past
    `query.after`, which the caller refines by key): one condition on the sort key. None
    when no time is left between them."""
    upper = [t for t in (query.until, query.after.updated if query.after else None)
             if t is not None]
    low, high = query.since, min(upper) if upper else None
    if low is not None and high is not None and low > high:
        return None
    values: dict[str, Any] = {":p": partition[1]}
    values.update({name: Decimal(repr(float(t))) for name, t in ((":low", low), (":high", high))
                   if t is not None})
    time_condition = {(True, True): " AND #u BETWEEN :low AND :high", (True, False):
                      " AND #u >= :low", (False, True): " AND #u <= :high", (False, False): ""}
    condition = time_condition[(low is not None, high is not None)]
    names = {"#p": partition[0], **({"#u": "updated"} if condition else {})}
    return {"IndexName": index, "KeyConditionExpression": "#p = :p" + condition,
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
