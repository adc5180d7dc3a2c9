"""MetadataStore: people's records (`name`, `major`, `year`, ...) keyed by name."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from facereel.errors import FacereelError

PersonRecord = dict[str, Any]


class MetadataStore(Protocol):
    def put_people(self, records: Iterable[PersonRecord]) -> int: ...

    def get_person(self, name: str) -> PersonRecord | None: ...

    def list_people(self) -> list[PersonRecord]: ...

    def delete_person(self, name: str) -> bool: ...


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
