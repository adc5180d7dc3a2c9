"""The per-video result document and the seed-compatible files users of the coursework expect.

One JSON object per input (see DESIGN.md): `status` is `ok`, `no_face` or `error`; `people` are
ordered by prominence (frames seen, then similarity); times are milliseconds from the start.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from facereel.core.types import Box

Status = Literal["ok", "no_face", "error"]
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Appearance:
    start_ms: int
    end_ms: int


@dataclass(slots=True)
class PersonResult:
    person: str
    similarity: float
    distance: float
    first_ms: int
    last_ms: int
    frames: int
    box: Box
    appearances: list[Appearance] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    face: str = ""  # where a crop of their face can be fetched (pipeline results), if anywhere


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    code: str
    message: str


@dataclass(slots=True)
class VideoResult:
    video: str
    status: Status
    duration_ms: int = 0
    frames_sampled: int = 0
    people: list[PersonResult] = field(default_factory=list)
    unknown_faces: int = 0
    error: ErrorInfo | None = None
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def top_person(self) -> PersonResult | None:
        return self.people[0] if self.people else None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        for person in doc["people"]:
            person["box"] = list(person["box"])
            if not person["face"]:
                del person["face"]
        if self.error is None:
            del doc["error"]
        if not self.stats:
            del doc["stats"]
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> VideoResult:
        people = [
            PersonResult(
                person=p["person"],
                similarity=float(p.get("similarity", 0.0)),
                distance=float(p.get("distance", 0.0)),
                first_ms=int(p.get("first_ms", 0)),
                last_ms=int(p.get("last_ms", 0)),
                frames=int(p.get("frames", 0)),
                box=tuple(p.get("box", (0, 0, 0, 0))),
                appearances=[Appearance(**a) for a in p.get("appearances", [])],
                metadata=dict(p.get("metadata") or {}),
                face=str(p.get("face", "")),
            )
            for p in doc.get("people", [])
        ]
        error = doc.get("error")
        return cls(
            video=str(doc["video"]),
            status=doc.get("status", "ok"),
            duration_ms=int(doc.get("duration_ms", 0)),
            frames_sampled=int(doc.get("frames_sampled", 0)),
            people=people,
            unknown_faces=int(doc.get("unknown_faces", 0)),
            error=ErrorInfo(error["code"], error["message"]) if error else None,
            stats=dict(doc.get("stats") or {}),
        )


def error_result(video: str, code: str, message: str) -> VideoResult:
    return VideoResult(video=video, status="error", error=ErrorInfo(code, message))


def seed_txt(result: VideoResult) -> str:
    """`<stem>.txt`: the top person's name (`unknown` when nobody enrolled was seen)."""
    top = result.top_person
    return (top.person if top else UNKNOWN) + "\n"


def seed_csv(result: VideoResult) -> str:
    """`<stem>.csv`: `name,major,year` header and the top person's row, as the coursework wrote."""
    top = result.top_person
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "major", "year"])
    if top is None:
        writer.writerow([UNKNOWN, "", ""])
    else:
        meta = top.metadata
        writer.writerow([top.person, meta.get("major", ""), meta.get("year", "")])
    return out.getvalue()
