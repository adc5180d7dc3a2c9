"""The coursework grader's rule: a video is right when the predicted person's `major,year`
equals its line in the `mapping` file (`video.mp4:major,year`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from facereel.core.results import VideoResult
from facereel.errors import FacereelError
from facereel.ports.metadata import PersonRecord, read_people_json
from facereel.ports.objectstore import ObjectStore


@dataclass(slots=True)
class Grade:
    right: int = 0
    total: int = 0
    wrong: list[tuple[str, str, str]] = field(default_factory=list)  # video, expected, got

    def __str__(self) -> str:
        return f"{self.right}/{self.total}"


def read_mapping(path: Path) -> dict[str, str]:
    mapping: dict[str, str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FacereelError(f"cannot read mapping {path}: {exc.strerror}", "unreadable") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        video, sep, answer = line.partition(":")
        if not sep:
            raise FacereelError(f"{path}:{number}: expected 'video.mp4:major,year'", "bad_mapping")
        mapping[video.strip()] = answer.strip()
    return mapping


def answer_of(person: str | None, students: dict[str, PersonRecord]) -> str:
    record = students.get(person or "")
    if record is None:
        return "unknown"
    return f"{record.get('major', '')},{record.get('year', '')}"


def grade(predictions: Mapping[str, str | None], mapping: Mapping[str, str],
          students: Iterable[PersonRecord]) -> Grade:
    """Grade predicted top persons (video name -> person or None) against the mapping."""
    by_name = {r["name"]: r for r in students}
    result = Grade(total=len(mapping))
    for video, expected in sorted(mapping.items()):
        if video not in predictions:
            result.wrong.append((video, expected, "missing"))
            continue
        got = answer_of(predictions[video], by_name)
        if got == expected:
            result.right += 1
        else:
            result.wrong.append((video, expected, f"{predictions[video]} ({got})"))
    return result


def predictions_from_results(results: Iterable[VideoResult]) -> dict[str, str | None]:
    """Top person per video; an `error` record predicts nobody (even with partial people)."""
    return {
        r.video: (r.top_person.person if r.top_person and r.status != "error" else None)
        for r in results
    }


def load_results(path: Path | ObjectStore) -> list[VideoResult]:
    """Results from a folder (and its sub-folders) of `<name>.json` documents, a file of JSON
    lines, or a bucket."""
    if not isinstance(path, Path | str):
        docs = [json.loads(path.get_bytes(info.key)) for info in path.list()
                if info.key.endswith(".json")]
        return [VideoResult.from_dict(d) for d in docs if isinstance(d, dict) and "video" in d]
    path = Path(path)
    if path.is_dir():
        docs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(path.rglob("*.json"))]
    elif path.is_file():
        text = path.read_text(encoding="utf-8")
        docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        raise FacereelError(f"results {path} not found", "not_found")
    return [VideoResult.from_dict(d) for d in docs if isinstance(d, dict) and "video" in d]


def grade_files(results: Path | ObjectStore, mapping: Path, students: Path) -> Grade:
    predictions = predictions_from_results(load_results(results))
    return grade(predictions, read_mapping(mapping), read_people_json(students))
