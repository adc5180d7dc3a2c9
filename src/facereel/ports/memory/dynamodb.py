"""DynamoMemory: the MemoryStore port over one DynamoDB table (`FACEREEL_FACES_TABLE`), keyed
by a string partition key `pk` and a string sort key `sk`.

    pk = "v#<video>", sk = "head"                   the record's header: which content (etag),
                                                    version, models, when, how many tracks
    pk = "v#<video>", sk = "t#<etag>#<version>#<stamp>#<track:06d>#<chunk:04d>"
                                                    a track's rows (200 shots each: an item
                                                    holds at most 400 KB)
    pk = "feed",      sk = "<seq:020d>#<video>"     one change: what the index writer applies

A record is written as new rows under a prefix of its own (a fresh stamp per attempt), then
the header is switched to that prefix by a conditional write (the header must be as it was
read), then the change is fed (after the switch: a change read from the feed is always
visible in the record; a writer that stops before feeding leaves `fed` false on the header,
and the next remember of that content feeds it), then the rows of other prefixes that were
there before are deleted: concurrent hosts never leave a mixture, and a reader only ever
takes the rows its header names. (A later writer's rows cannot be among those deleted: it
read the header after our switch, so it wrote its rows after our read; a writer that lost
the race leaves orphan rows, which the next successful write of that video deletes.)

Change numbers are microseconds since the epoch, taken when the change is fed; `horizon()`
is `SETTLE_S` before now, the bound on a feed write's delay (a put with its retries, clock
skew between hosts) after its number was taken. Reads are strongly consistent.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import numpy as np
from boto3.dynamodb.conditions import Attr, Key

from facereel.ports.aws import BOTO_ERRORS, classify_boto_error
from facereel.ports.memory import (
    Change,
    FaceMemoryError,
    Shot,
    TrackMemory,
    VideoMemory,
    VideoSummary,
    detail_of,
    detail_text,
    vectors_from_bytes,
)
from facereel.ports.metadata.dynamodb import from_dynamo, to_dynamo

T = TypeVar("T")
Item = dict[str, Any]
HEAD = "head"
FEED = "feed"
CHUNK_SHOTS = 200
SETTLE_S = 600.0
ATTEMPTS = 5  # a header that keeps changing under us (several hosts on one video)


def _seq() -> int:
    return time.time_ns() // 1000


class DynamoMemory:
    def __init__(self, resource: Any, table: str) -> None:
        """`resource`: a boto3 DynamoDB resource (`metadata.dynamodb.make_dynamo`). The
        table must exist (`facereel provision` creates it)."""
        self.table_name = table
        self._table = resource.Table(table)
        self._endpoint = resource.meta.client.meta.endpoint_url

    def describe(self) -> str:
        return f"dynamodb table {self.table_name} at {self._endpoint}"

    def _call(self, action: str, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except BOTO_ERRORS as exc:
            kind, detail = classify_boto_error(exc)
            if kind == "precondition_failed" or "ConditionalCheckFailed" in detail:
                raise _ConflictError() from exc
            code = {"denied": "memory_denied", "unreachable": "memory_unreachable",
                    "no_container": "memory_missing_table"}.get(kind, "memory_error")
            hint = " (create it with `facereel provision`)" \
                if code == "memory_missing_table" else ""
            raise FaceMemoryError(f"cannot {action} in dynamodb table {self.table_name}: "
                                  f"{detail}{hint}", code) from exc

    def _query(self, condition: Any, **options: Any) -> Iterator[Item]:
        while True:
            response = self._call("read", lambda: self._table.query(
                KeyConditionExpression=condition, ConsistentRead=True, **options))
            yield from response.get("Items") or []
            if not response.get("LastEvaluatedKey") or "Limit" in options:
                return
            options["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _partition(self, video: str) -> tuple[Item | None, list[Item]]:
        items = list(self._query(Key("pk").eq(f"v#{video}")))
        head = next((i for i in items if i["sk"] == HEAD), None)
        return head, [i for i in items if i["sk"] != HEAD]

    # ---- writing ------------------------------------------------------------------------
    def remember(self, memory: VideoMemory) -> bool:
        for _ in range(ATTEMPTS):
            head, rows = self._partition(memory.video)
            if head is not None and head["etag"] == memory.etag:
                if not head.get("fed", True):  # its writer stopped before announcing it
                    self._announce(memory.video, str(head["stamp"]))
                return False  # this content is remembered already: nothing is added
            try:
                self._write(memory, head, rows, 0, memory.written)
                return True
            except _ConflictError:
                continue  # another host changed the header meanwhile: look again
        raise FaceMemoryError(f"{memory.video}: its record kept changing while it was "
                              "remembered", "memory_conflict")

    def replace(self, memory: VideoMemory) -> bool:
        head, rows = self._partition(memory.video)
        if head is None or (head["etag"], int(head["version"])) != (memory.etag,
                                                                     memory.version):
            return False
        try:
            self._write(memory, head, rows, memory.version + 1, float(head["written"]))
        except _ConflictError:
            return False
        return True

    def _write(self, memory: VideoMemory, head: Item | None, rows: list[Item], version: int,
               written: float) -> None:
        stamp = uuid.uuid4().hex[:12]
        prefix = f"t#{memory.etag}#{version}#{stamp}#"
        pk = f"v#{memory.video}"
        self._batch([], [item for n, track in enumerate(memory.tracks)
                         for item in _track_items(pk, f"{prefix}{n:06d}", track)])
        new_head = to_dynamo({"pk": pk, "sk": HEAD, "etag": memory.etag, "version": version,
                              "stamp": stamp, "fed": False, "written": written,
                              "detector": memory.detector, "aligner": memory.aligner,
                              "embedder": memory.embedder, "tracks": len(memory.tracks),
                              "prefix": prefix})
        condition = Attr("pk").not_exists() if head is None \
            else Attr("stamp").eq(head["stamp"])
        self._call("write a record", lambda: self._table.put_item(
            Item=new_head, ConditionExpression=condition))
        self._announce(memory.video, stamp)
        self._batch([{"pk": pk, "sk": r["sk"]} for r in rows], [])

    def _announce(self, video: str, stamp: str) -> None:
        """Feed the change once the record is visible (whoever reads the feed then reads at
        least this record), then mark the header as announced."""
        self._feed(video)
        with contextlib.suppress(_ConflictError):  # rewritten meanwhile: announced by its writer
            self._call("mark a record announced", lambda: self._table.update_item(
                Key={"pk": f"v#{video}", "sk": HEAD}, UpdateExpression="SET fed = :yes",
                ConditionExpression=Attr("stamp").eq(stamp),
                ExpressionAttributeValues={":yes": True}))

    def _batch(self, deletes: list[Item], puts: list[Item]) -> None:
        if not deletes and not puts:
            return

        def run() -> None:
            with self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
                for key in deletes:
                    batch.delete_item(Key=key)
                for item in puts:
                    batch.put_item(Item=item)

        self._call("write rows", run)

    def _feed(self, video: str) -> int:
        seq = _seq()
        item = {"pk": FEED, "sk": f"{seq:020d}#{video}", "seq": seq, "video": video,
                "at": to_dynamo(time.time())}
        self._call("write a change", lambda: self._table.put_item(Item=item))
        return seq

    def forget(self, video: str) -> bool:
        pk = f"v#{video}"
        for _ in range(ATTEMPTS):
            head, rows = self._partition(video)
            if head is None:
                if rows:  # a forget that stopped half-way, or a writer's orphans
                    self._feed(video)
                    self._batch([{"pk": pk, "sk": r["sk"]} for r in rows], [])
                return False
            unchanged = Attr("stamp").eq(head["stamp"])
            try:  # the header first (the record goes at once), as it was read
                self._call("forget a record", partial(
                    self._table.delete_item, Key={"pk": pk, "sk": HEAD},
                    ConditionExpression=unchanged))
            except _ConflictError:
                continue
            self._feed(video)
            self._batch([{"pk": pk, "sk": r["sk"]} for r in rows], [])
            return True
        raise FaceMemoryError(f"{video}: its record kept changing while it was forgotten",
                              "memory_conflict")

    # ---- reading ------------------------------------------------------------------------
    def get(self, video: str) -> VideoMemory | None:
        head, rows = self._partition(video)
        if head is None:
            return None
        mine = sorted((r for r in rows if r["sk"].startswith(str(head["prefix"]))),
                      key=lambda r: str(r["sk"]))
        tracks = _tracks(mine)
        return VideoMemory(video, str(head["etag"]), str(head["detector"]),
                           str(head["aligner"]), str(head["embedder"]), tracks,
                           float(head["written"]), int(head["version"]))

    def changes(self, after: int, limit: int = 1000) -> list[Change]:
        items = self._query(Key("pk").eq(FEED) & Key("sk").gte(f"{after + 1:020d}"),
                            Limit=max(1, limit))
        return [Change(int(i["seq"]), str(i["video"])) for i in items]

    def horizon(self) -> int:
        return _seq() - int(SETTLE_S * 1_000_000)

    def prune_changes(self, upto: int, before: float) -> int:
        old = [i for i in self._query(Key("pk").eq(FEED) & Key("sk").lt(f"{upto + 1:020d}"))
               if float(i["at"]) < before]
        self._batch([{"pk": FEED, "sk": i["sk"]} for i in old], [])
        return len(old)

    def _scan(self, condition: Any, projection: str) -> Iterator[Item]:
        options: dict[str, Any] = {"FilterExpression": condition,
                                   "ProjectionExpression": projection}
        while True:
            response = self._call("scan", lambda: self._table.scan(ConsistentRead=True,
                                                                   **options))
            yield from response.get("Items") or []
            if not response.get("LastEvaluatedKey"):
                return
            options["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def videos(self) -> Iterator[VideoSummary]:
        heads = self._scan(Attr("sk").eq(HEAD), "pk, etag, version, embedder, written, tracks")
        for item in sorted(heads, key=lambda i: str(i["pk"])):
            yield VideoSummary(str(item["pk"])[2:], str(item["etag"]), int(item["version"]),
                               str(item["embedder"]), float(item["written"]),
                               int(item["tracks"]))

    def tracks_of(self, person: str) -> list[tuple[str, str]]:
        """Candidates: rows of older versions may be among them (callers read the record)."""
        found = self._scan(Attr("person").eq(person) & Attr("sk").begins_with("t#"),
                           "pk, track_id")
        return sorted({(str(i["pk"])[2:], str(i["track_id"])) for i in found})


class _ConflictError(Exception):
    """A conditional write found the header changed since it was read."""


def _track_items(pk: str, sk: str, track: TrackMemory) -> list[Item]:
    items = []
    for chunk, start in enumerate(range(0, len(track.shots), CHUNK_SHOTS)):
        shots = track.shots[start:start + CHUNK_SHOTS]
        vectors = track.embeddings[start:start + CHUNK_SHOTS].astype("<f4").tobytes()
        item: Item = {"pk": pk, "sk": f"{sk}#{chunk:04d}", "track_id": track.track_id,
                      "shots": json.dumps([[s.at_ms, s.crop] for s in shots]),
                      "vectors": vectors}
        if chunk == 0:  # what describes the whole track
            item.update(to_dynamo({"appearances": json.dumps(track.appearances),
                                   "face": track.face, "distance": track.distance,
                                   "detail": detail_text(track.detail)}))
            item.update({k: v for k, v in (("person", track.person),
                                           ("nearest", track.nearest)) if v is not None})
        items.append(item)
    return items


def _tracks(rows: list[Item]) -> list[TrackMemory]:
    """Tracks from their rows, sorted by key: a track's chunks follow each other."""
    groups: dict[str, list[Item]] = {}
    for row in rows:
        groups.setdefault(str(row["sk"]).rsplit("#", 1)[0], []).append(row)
    return [_track(chunks) for _, chunks in sorted(groups.items())]


def _track(chunks: list[Item]) -> TrackMemory:
    first = from_dynamo({k: v for k, v in chunks[0].items() if k != "vectors"})
    shots: list[Shot] = []
    blocks = []
    for chunk in chunks:
        mine = [Shot(int(at), str(crop)) for at, crop in json.loads(str(chunk["shots"]))]
        vectors: Any = chunk["vectors"]  # boto3's Binary wraps the bytes
        raw = vectors.value if hasattr(vectors, "value") else vectors
        blocks.append(vectors_from_bytes(bytes(raw), len(mine)))
        shots += mine
    distance = first.get("distance")
    return TrackMemory(
        track_id=str(first["track_id"]),
        appearances=[(int(a), int(b)) for a, b in json.loads(first["appearances"])],
        face=str(first.get("face") or ""), shots=shots, embeddings=np.vstack(blocks),
        person=first.get("person"), nearest=first.get("nearest"),
        distance=None if distance is None else float(distance),
        detail=detail_of(first.get("detail")))
