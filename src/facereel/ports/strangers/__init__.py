"""StrangerStore: the grouping of the face memory's strangers (tracks matched to nobody),
kept between runs so groups keep their ids and the groups people merged or split by hand
stay as they made them.

The state is one document: which record (video, etag, version) each video's strangers were
read from, one point per stranger track (its median embedding, its number of faces, its best
crop) and the groups (`pinned`: made by hand, kept exactly). Its writer is the face index's
single writer (or a command acting on groups); a write names the version it was based on.

Contract (every backend):
- `load()` the stored state and its version ("" and None when there is none yet).
- `save(state, based_on)` stores it if the stored version is still `based_on` ("" = none)
  and answers the new version; StrangersConflictError (nothing written) otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from facereel.core.types import FloatArray
from facereel.errors import FacereelError
from facereel.ports.memory import decode_vectors, encode_vectors

FORMAT = "facereel-strangers/1"
TrackRef = tuple[str, str]  # (video, track_id)


class StrangersConflictError(FacereelError):
    """Another writer changed the grouping meanwhile."""

    code = "strangers_conflict"


@dataclass(frozen=True, slots=True)
class StrangerPoint:
    video: str
    etag: str
    track_id: str
    faces: int  # shots of the track
    face: str  # its best crop (a stage-1 key), "" when none was kept
    vector: FloatArray  # the median of its shots' embeddings

    @property
    def ref(self) -> TrackRef:
        return (self.video, self.track_id)


@dataclass(slots=True)
class Group:
    members: list[TrackRef]
    pinned: bool = False  # made by hand (merge, split): kept exactly, never regrouped


@dataclass(slots=True)
class StrangerState:
    embedder: str
    videos: dict[str, tuple[str, int]] = field(default_factory=dict)  # -> (etag, version)
    points: dict[TrackRef, StrangerPoint] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    grouping: tuple[float, int] | None = None  # (eps, min tracks) the groups were made with

    def grouped(self) -> set[TrackRef]:
        return {ref for group in self.groups.values() for ref in group.members}

    def to_doc(self) -> dict[str, Any]:
        return {"format": FORMAT, "embedder": self.embedder,
                "videos": {v: list(at) for v, at in self.videos.items()},
                "points": [[p.video, p.etag, p.track_id, p.faces, p.face,
                            encode_vectors(p.vector[None, :])] for p in self.points.values()],
                "groups": {gid: {"members": [list(m) for m in g.members], "pinned": g.pinned}
                           for gid, g in self.groups.items()},
                "grouping": list(self.grouping) if self.grouping else None}

    @classmethod
    def from_doc(cls, doc: Any) -> StrangerState:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise FacereelError("not a grouping of strangers", "bad_strangers")
        try:
            points = [StrangerPoint(str(v), str(e), str(t), int(n), str(f),
                                    decode_vectors(str(vec), 1)[0])
                      for v, e, t, n, f, vec in doc["points"]]
            return cls(str(doc["embedder"]),
                       {str(v): (str(at[0]), int(at[1])) for v, at in doc["videos"].items()},
                       {p.ref: p for p in points},
                       {str(gid): Group([(str(a), str(b)) for a, b in g["members"]],
                                        bool(g.get("pinned", False)))
                        for gid, g in doc["groups"].items()},
                       _grouping(doc.get("grouping")))
        except (KeyError, TypeError, ValueError) as exc:
            raise FacereelError(f"a malformed grouping of strangers ({exc})",
                                "bad_strangers") from exc


def _grouping(value: Any) -> tuple[float, int] | None:
    if value is None:  # a grouping saved before its parameters were
        return None
    eps, min_tracks = value
    return float(eps), int(min_tracks)


class StrangerStore(Protocol):
    def describe(self) -> str: ...

    def load(self) -> tuple[StrangerState | None, str]: ...

    def save(self, state: StrangerState, based_on: str) -> str: ...
