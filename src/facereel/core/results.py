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


@dataclass(slots=True)
class StrangerResult:
    """One followed face that matched nobody enrolled: when and where it was, a crop to look
    at (and enrol from), and who it resembles most. `track_id` is stable within the video
    (the same analysis gives the same ids), so a stranger can be named later."""

    track_id: str
    first_ms: int
    last_ms: int
    frames: int
    box: Box
    appearances: list[Appearance] = field(default_factory=list)
    face: str = ""
    nearest: str | None = None  # the closest enrolled person (None: empty gallery)
    distance: float | None = None  # to `nearest`: farther than the match threshold

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["box"] = list(self.box)
        if not self.face:
            del doc["face"]
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> StrangerResult:
        box = doc.get("box", (0, 0, 0, 0))
        return cls(track_id=str(doc["track_id"]), first_ms=int(doc.get("first_ms", 0)),
                   last_ms=int(doc.get("last_ms", 0)), frames=int(doc.get("frames", 0)),
                   box=(int(box[0]), int(box[1]), int(box[2]), int(box[3])),
                   appearances=[Appearance(**a) for a in doc.get("appearances", [])],
                   face=str(doc.get("face", "")), nearest=doc.get("nearest"),
                   distance=None if doc.get("distance") is None else float(doc["distance"]))


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    code: str
    message: str


SCHEMA_VERSION = 2  # 2: `strangers`, and documents named after the whole input key


@dataclass(slots=True)
class VideoResult:
    video: str
    status: Status
    duration_ms: int = 0
    frames_sampled: int = 0
    people: list[PersonResult] = field(default_factory=list)
    unknown_faces: int = 0  # distinct strangers (their tracks grouped when alike)
    strangers: list[StrangerResult] = field(default_factory=list)
    error: ErrorInfo | None = None
    stats: dict[str, float] = field(default_factory=dict)
    # face crops (JPEG) the `face` fields point to, when the caller asked for them: carried
    # beside the document for whoever writes it, never part of it
    face_images: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    @property
    def top_person(self) -> PersonResult | None:
        return self.people[0] if self.people else None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "video": self.video,
                               "status": self.status, "duration_ms": self.duration_ms,
                               "frames_sampled": self.frames_sampled}
        doc["people"] = [_person_doc(p) for p in self.people]
        doc["unknown_faces"] = self.unknown_faces
        doc["strangers"] = [s.to_dict() for s in self.strangers]
        if self.error is not None:
            doc["error"] = asdict(self.error)
        if self.stats:
            doc["stats"] = dict(self.stats)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> VideoResult:
        error = doc.get("error")
        return cls(
            video=str(doc["video"]),
            status=doc.get("status", "ok"),
            duration_ms=int(doc.get("duration_ms", 0)),
            frames_sampled=int(doc.get("frames_sampled", 0)),
            people=[_person_from(p) for p in doc.get("people", [])],
            unknown_faces=int(doc.get("unknown_faces", 0)),
            strangers=[StrangerResult.from_dict(s) for s in doc.get("strangers", [])],
            error=ErrorInfo(error["code"], error["message"]) if error else None,
            stats=dict(doc.get("stats") or {}),
        )


def _person_doc(person: PersonResult) -> dict[str, Any]:
    doc = asdict(person)
    doc["box"] = list(person.box)
    if not person.face:
        del doc["face"]
    return doc


def _person_from(doc: dict[str, Any]) -> PersonResult:
    box = doc.get("box", (0, 0, 0, 0))
    return PersonResult(
        person=doc["person"],
        similarity=float(doc.get("similarity", 0.0)),
        distance=float(doc.get("distance", 0.0)),
        first_ms=int(doc.get("first_ms", 0)),
        last_ms=int(doc.get("last_ms", 0)),
        frames=int(doc.get("frames", 0)),
        box=(int(box[0]), int(box[1]), int(box[2]), int(box[3])),
        appearances=[Appearance(**a) for a in doc.get("appearances", [])],
        metadata=dict(doc.get("metadata") or {}),
        face=str(doc.get("face", "")),
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
