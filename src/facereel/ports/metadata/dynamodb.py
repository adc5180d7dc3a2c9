"""DynamoMetadata: the MetadataStore port over two DynamoDB tables.

The people table has the string hash key `name`, exactly like the original coursework's
student table, so an existing table can be used as is; the videos table is keyed by the
input object's `key`. Records round-trip like `SqliteMetadata`: DynamoDB has no float type
and hands numbers back as `Decimal`, so floats are stored as exact decimals and numbers come
back as `int` when integral, else `float` (so `2.0` may come back as `2`). Reads are strongly
consistent, so a record is visible right after it is written, as with SQLite. Listing and
counting videos scan the table (fine for thousands of rows; a status index would be next).

Either a boto3 DynamoDB resource (as `make_dynamo` returns) or a client works: a plain
`boto3.client("dynamodb")` gets its values converted with boto3's TypeSerializer and
TypeDeserializer here; a resource's `.meta.client` already converts them itself.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar

import boto3
from boto3.dynamodb.table import BatchWriter
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from facereel.errors import FacereelError
from facereel.ports.aws import BOTO_ERRORS, boto_config, classify_boto_error
from facereel.ports.metadata import PersonRecord, VideoRecord

T = TypeVar("T")
Item = dict[str, Any]


class MetadataError(FacereelError):
    """A metadata operation failed (table missing, access denied, server unreachable...)."""

    code = "metadata_error"


def make_dynamo(endpoint_url: str | None, region: str | None, access_key: str | None,
                secret_key: str | None) -> Any:
    """A boto3 DynamoDB resource with bounded retries and timeouts."""
    return boto3.resource("dynamodb", endpoint_url=endpoint_url or None,
                          region_name=region or ("us-east-1" if endpoint_url else None),
                          aws_access_key_id=access_key or None,
                          aws_secret_access_key=secret_key or None, config=boto_config())


def to_dynamo(value: Any) -> Any:
    """A JSON-like value as DynamoDB accepts it (floats as exact Decimals)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MetadataError(f"DynamoDB cannot store the number {value}", "bad_metadata")
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {str(k): to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """A DynamoDB value back as plain Python (Decimal -> int or float, sets -> sorted lists)."""
    if isinstance(value, Decimal):
        integral = value == value.to_integral_value() and int(value.as_tuple().exponent) >= 0
        return int(value) if integral else float(value)
    if isinstance(value, dict):
        return {str(k): from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(from_dynamo(v) for v in value)
    return value


class _ClientBatch:
    """`Table.batch_writer()` for a low-level client: serializes items, then lets boto3's
    BatchWriter buffer them and resend what DynamoDB leaves unprocessed."""

    def __init__(self, client: Any, table: str, overwrite_by_pkeys: list[str],
                 typed: Callable[[Item], Item]) -> None:
        self._writer = BatchWriter(table, client, overwrite_by_pkeys=overwrite_by_pkeys)
        self._typed = typed

    def __enter__(self) -> _ClientBatch:
        self._writer.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._writer.__exit__(kind, exc, traceback)

    def put_item(self, Item: Item) -> None:  # noqa: N803 - the boto3 Table signature
        self._writer.put_item(Item=self._typed(Item))


def _converts_values(client: Any) -> bool:
    """True for a resource's `.meta.client`: boto3 registered handlers on it that convert
    Python values to and from DynamoDB's typed form, so converting here would do it twice.
    botocore has no public way to ask, hence the look at the emitter's handler ids."""
    events = client.meta.events
    emitter = getattr(events, "_emitter", events)
    return "dynamodb-attr-value-input" in getattr(emitter, "_unique_id_handlers", {})


class _ClientTable:
    """The few `Table` resource methods used here, over a low-level client."""

    def __init__(self, client: Any, name: str) -> None:
        self.client, self.name = client, name
        self._convert = not _converts_values(client)
        self._serializer, self._deserializer = TypeSerializer(), TypeDeserializer()

    def _typed(self, item: Item) -> Item:
        if not self._convert:
            return item
        return {k: self._serializer.serialize(v) for k, v in item.items()}

    def _plain(self, item: Item) -> Item:
        if not self._convert:
            return item
        return {k: self._deserializer.deserialize(v) for k, v in item.items()}

    def put_item(self, Item: Item) -> None:  # noqa: N803
        self.client.put_item(TableName=self.name, Item=self._typed(Item))

    def get_item(self, Key: Item, **options: Any) -> Item:  # noqa: N803
        response = self.client.get_item(TableName=self.name, Key=self._typed(Key), **options)
        return {"Item": self._plain(response["Item"])} if "Item" in response else {}

    def delete_item(self, Key: Item, **options: Any) -> Item:  # noqa: N803
        response = self.client.delete_item(TableName=self.name, Key=self._typed(Key), **options)
        return {"Attributes": self._plain(response["Attributes"])} \
            if "Attributes" in response else {}

    def update_item(self, Key: Item, **options: Any) -> Item:  # noqa: N803
        values = options.get("ExpressionAttributeValues")
        if values is not None:
            options["ExpressionAttributeValues"] = self._typed(values)
        response = self.client.update_item(TableName=self.name, Key=self._typed(Key), **options)
        return {"Attributes": self._plain(response["Attributes"])} \
            if "Attributes" in response else {}

    def scan(self, **options: Any) -> Item:
        for name in ("ExclusiveStartKey", "ExpressionAttributeValues"):
            if name in options:
                options[name] = self._typed(options[name])
        response = self.client.scan(TableName=self.name, **options)
        result: Item = {"Items": [self._plain(i) for i in response.get("Items") or []]}
        if response.get("LastEvaluatedKey"):
            result["LastEvaluatedKey"] = self._plain(response["LastEvaluatedKey"])
        return result

    def batch_writer(self, overwrite_by_pkeys: list[str]) -> _ClientBatch:
        return _ClientBatch(self.client, self.name, overwrite_by_pkeys, self._typed)


class DynamoMetadata:
    """People and video status records in DynamoDB."""

    def __init__(self, resource_or_client: Any, people_table: str, videos_table: str,
                 windows_table: str = "facereel-windows") -> None:
        """The tables must exist (`facereel provision` creates them); a missing one is
        reported on first use as `metadata_missing_table`."""
        is_resource = hasattr(resource_or_client, "Table")
        self.client = resource_or_client.meta.client if is_resource else resource_or_client
        self.people_table, self.videos_table = people_table, videos_table
        self.windows_table = windows_table

        def table(name: str) -> Any:
            return resource_or_client.Table(name) if is_resource else \
                _ClientTable(resource_or_client, name)

        self._people, self._videos = table(people_table), table(videos_table)
        self._windows = table(windows_table)

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
            hint = " (create the tables with `facereel provision`)" \
                if code == "metadata_missing_table" else ""
            raise MetadataError(f"cannot {action} in dynamodb: {detail}{hint}", code) from exc

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
        item = to_dynamo(record.to_item())
        self._call(f"write {record.key!r} to {self.videos_table}",
                   lambda: self._videos.put_item(Item=item))

    def get_video(self, key: str) -> VideoRecord | None:
        response = self._call(f"read {key!r} from {self.videos_table}", lambda: (
            self._videos.get_item(Key={"key": key}, ConsistentRead=True)))
        item = response.get("Item")
        return VideoRecord.from_item(from_dynamo(item)) if item else None

    def list_videos(self, status: str | None = None, limit: int = 1000) -> list[VideoRecord]:
        """Most recently updated first, like SqliteMetadata (a full scan: no index yet)."""
        options: dict[str, Any] = {}
        if status is not None:
            options = {"FilterExpression": "#s = :s", "ExpressionAttributeNames": {"#s": "status"},
                       "ExpressionAttributeValues": {":s": status}}
        items = self._call(f"list {self.videos_table}",
                           lambda: list(self._scan(self._videos, **options)))
        records = [VideoRecord.from_item(from_dynamo(i)) for i in items]
        records.sort(key=lambda r: r.updated, reverse=True)
        return records[:max(0, limit)]

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
