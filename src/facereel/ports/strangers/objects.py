"""StrangerStore in an object store (the stage-1 bucket: a folder on the embedded backends,
S3 on AWS): one JSON object, `memory-index/strangers.json`, written with a conditional put."""

from __future__ import annotations

import json

from facereel.ports.objectstore import ObjectNotFoundError, ObjectStore, PreconditionFailedError
from facereel.ports.strangers import StrangersConflictError, StrangerState

STRANGERS_KEY = "memory-index/strangers.json"


class ObjectStrangerStore:
    def __init__(self, objects: ObjectStore, key: str = STRANGERS_KEY) -> None:
        self.objects, self.key = objects, key

    def describe(self) -> str:
        return f"{self.key} in the stage-1 bucket"

    def load(self) -> tuple[StrangerState | None, str]:
        try:
            data, info = self.objects.fetch(self.key)
        except ObjectNotFoundError:
            return None, ""
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        return StrangerState.from_doc(doc), info.etag

    def save(self, state: StrangerState, based_on: str) -> str:
        data = json.dumps(state.to_doc(), separators=(",", ":")).encode()
        try:
            info = self.objects.put_bytes(self.key, data, content_type="application/json",
                                          expect=based_on)
        except PreconditionFailedError as exc:
            raise StrangersConflictError("another writer regrouped the strangers meanwhile; "
                                         "nothing was changed (try again)") from exc
        return info.etag
