"""DynamoDB plumbing of the metadata store: values as DynamoDB takes them (floats as exact
decimals) and back, and the few `Table` resource methods `DynamoMetadata` uses, over a
low-level client too (a plain `boto3.client("dynamodb")` gets its values converted with
boto3's TypeSerializer and TypeDeserializer here; a resource's `.meta.client` already
converts them itself)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from decimal import Decimal
from types import TracebackType
from typing import Any

from boto3.dynamodb.table import BatchWriter
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from facereel.errors import FacereelError

Item = dict[str, Any]


class MetadataError(FacereelError):
    """A metadata operation failed (table missing, access denied, server unreachable...)."""

    code = "metadata_error"


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


class ClientBatch:
    """`Table.batch_writer()` for a low-level client: serializes items, then lets boto3's
    BatchWriter buffer them and resend what DynamoDB leaves unprocessed."""

    def __init__(self, client: Any, table: str, overwrite_by_pkeys: list[str],
                 typed: Callable[[Item], Item]) -> None:
        self._writer = BatchWriter(table, client, overwrite_by_pkeys=overwrite_by_pkeys)
        self._typed = typed

    def __enter__(self) -> ClientBatch:
        self._writer.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._writer.__exit__(kind, exc, traceback)

    def put_item(self, Item: Item) -> None:  # noqa: N803 - the boto3 Table signature
        self._writer.put_item(Item=self._typed(Item))


def converts_values(client: Any) -> bool:
    """True for a resource's `.meta.client`: boto3 registered handlers on it that convert
    Python values to and from DynamoDB's typed form, so converting here would do it twice.
    botocore has no public way to ask, hence the look at the emitter's handler ids."""
    events = client.meta.events
    emitter = getattr(events, "_emitter", events)
    return "dynamodb-attr-value-input" in getattr(emitter, "_unique_id_handlers", {})


class ClientTable:
    """The few `Table` resource methods used here, over a low-level client."""

    def __init__(self, client: Any, name: str) -> None:
        self.client, self.name = client, name
        self._convert = not converts_values(client)
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
        return self._read(self.client.scan, options)

    def query(self, **options: Any) -> Item:
        return self._read(self.client.query, options)

    def _read(self, operation: Callable[..., Item], options: Item) -> Item:
        """A scan or query page, its values plain."""
        for name in ("ExclusiveStartKey", "ExpressionAttributeValues"):
            if name in options:
                options[name] = self._typed(options[name])
        response = operation(TableName=self.name, **options)
        result: Item = {"Items": [self._plain(i) for i in response.get("Items") or []]}
        if response.get("LastEvaluatedKey"):
            result["LastEvaluatedKey"] = self._plain(response["LastEvaluatedKey"])
        return result

    def batch_writer(self, overwrite_by_pkeys: list[str]) -> ClientBatch:
        return ClientBatch(self.client, self.name, overwrite_by_pkeys, self._typed)


BATCH_GET = 100  # keys per BatchGetItem request, DynamoDB's maximum
BATCH_ROUNDS = 8  # requests for one batch's unprocessed keys before giving up


def batch_get(client: Any, table: str, key: str, values: list[str]) -> list[Item]:
    """The items of `table` whose string hash key `key` is one of `values` (strongly
    consistent; missing ones are left out), through any client."""
    convert = not converts_values(client)
    serializer, deserializer = TypeSerializer(), TypeDeserializer()
    found: list[Item] = []
    for start in range(0, len(values), BATCH_GET):
        keys = [{key: serializer.serialize(v) if convert else v}
                for v in dict.fromkeys(values[start:start + BATCH_GET])]
        request: Item = {table: {"Keys": keys, "ConsistentRead": True}}
        for round_ in range(BATCH_ROUNDS):
            time.sleep(0.05 * (2 ** round_ - 1))  # none at first, then backing off
            response = client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                found.append({k: deserializer.deserialize(v) for k, v in item.items()}
                             if convert else item)
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise MetadataError(f"{table}: DynamoDB left keys unread {BATCH_ROUNDS} times "
                                "(throttled); try again", "metadata_throttled")
    return found
