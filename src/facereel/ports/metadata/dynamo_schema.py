"""The DynamoDB tables of the metadata store, declared once: `DynamoMetadata` queries these
keys and indexes, `facereel provision` creates them, and the SAM template is checked against
them. Plain data, no AWS library: the provisioning plan reads it without importing boto3.

    people         name                          the coursework's student table, as it was
    videos         key; index by-status          one row per input; by-status (status,
                   (status, updated)             updated) serves listings newest first
    windows        video                         the join of a long video's windows
    person-videos  person, key; local index      one item per person a published result
                   by-updated (person, updated)  names: the person filter, without a scan
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

VIDEOS_BY_STATUS = "by-status"
PERSON_VIDEOS_BY_UPDATED = "by-updated"


@dataclass(frozen=True, slots=True)
class KeyAttribute:
    name: str
    type: Literal["S", "N"] = "S"

    def definition(self) -> dict[str, str]:
        return {"AttributeName": self.name, "AttributeType": self.type}


@dataclass(frozen=True, slots=True)
class IndexSpec:
    name: str
    hash_key: KeyAttribute
    range_key: KeyAttribute
    local: bool = False  # a local index shares the table's hash key; only creation adds it
    projection: Literal["ALL", "KEYS_ONLY"] = "ALL"

    def key_schema(self) -> list[dict[str, str]]:
        return [{"AttributeName": self.hash_key.name, "KeyType": "HASH"},
                {"AttributeName": self.range_key.name, "KeyType": "RANGE"}]

    def create_shape(self) -> dict[str, Any]:
        """As CreateTable, UpdateTable and CloudFormation take it (on-demand tables)."""
        return {"IndexName": self.name, "KeySchema": self.key_schema(),
                "Projection": {"ProjectionType": self.projection}}


@dataclass(frozen=True, slots=True)
class TableSpec:
    hash_key: KeyAttribute
    range_key: KeyAttribute | None = None
    indexes: tuple[IndexSpec, ...] = ()

    def key_schema(self) -> list[dict[str, str]]:
        schema = [{"AttributeName": self.hash_key.name, "KeyType": "HASH"}]
        if self.range_key is not None:
            schema.append({"AttributeName": self.range_key.name, "KeyType": "RANGE"})
        return schema

    def attribute_definitions(self, indexes: tuple[IndexSpec, ...] | None = None
                              ) -> list[dict[str, str]]:
        """Every key attribute of the table and of `indexes` (default: all of them)."""
        keys = [self.hash_key, self.range_key]
        for index in self.indexes if indexes is None else indexes:
            keys += [index.hash_key, index.range_key]
        unique = {key.name: key for key in keys if key is not None}
        return [key.definition() for key in unique.values()]

    def global_indexes(self) -> list[IndexSpec]:
        return [index for index in self.indexes if not index.local]

    def local_indexes(self) -> list[IndexSpec]:
        return [index for index in self.indexes if index.local]

    def describe(self) -> str:
        keys = ", ".join(k.name for k in (self.hash_key, self.range_key) if k is not None)
        indexes = "".join(f"; index {i.name} ({i.hash_key.name}, {i.range_key.name})"
                          for i in self.indexes)
        return f"key ({keys}){indexes}"


PEOPLE_TABLE = TableSpec(KeyAttribute("name"))
VIDEOS_TABLE = TableSpec(KeyAttribute("key"), indexes=(
    IndexSpec(VIDEOS_BY_STATUS, KeyAttribute("status"), KeyAttribute("updated", "N")),))
WINDOWS_TABLE = TableSpec(KeyAttribute("video"))
PERSON_VIDEOS_TABLE = TableSpec(KeyAttribute("person"), KeyAttribute("key"), indexes=(
    IndexSpec(PERSON_VIDEOS_BY_UPDATED, KeyAttribute("person"), KeyAttribute("updated", "N"),
              local=True, projection="KEYS_ONLY"),))
# the face memory's table (ports/memory/dynamodb.py): one item per track, a video's in one partition
FACES_TABLE = TableSpec(KeyAttribute("pk"), KeyAttribute("sk"))
