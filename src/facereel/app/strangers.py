"""The groups of strangers, shared by the CLI and the HTTP API: list them (regrouping first
when the memory changed), merge and split wrong groups, and name a group: its faces are
enrolled as that person (skipping faces that match somebody else, unless forced, as
enrolment does) and the past results that change are republished. Callers write the audit
lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from facereel.app.enroll import ClaimCheck
from facereel.config import Settings
from facereel.core.gallery import Gallery
from facereel.core.types import FloatArray
from facereel.errors import FacereelError
from facereel.memory.relearn import Relearned
from facereel.memory.strangers import (
    Grouping,
    describe_group,
    group_of,
    listing,
    merge_groups,
    regroup,
    split_group,
    update_points,
)
from facereel.pipeline.wiring import Ports
from facereel.ports.strangers import StrangersConflictError, StrangerState, StrangerStore, TrackRef
from facereel.ports.strangers.objects import ObjectStrangerStore

T = TypeVar("T")
ATTEMPTS = 3
MAX_NAMED_FACES = 32  # gallery vectors a named group gives its person, at most


@dataclass(frozen=True, slots=True)
class Named:
    person: str
    enrolled: int
    learned: Relearned

    def to_dict(self) -> dict[str, Any]:
        return {"person": self.person, "enrolled": self.enrolled,
                "republished": self.learned.republished}


def spread(vectors: FloatArray, most: int) -> FloatArray:
    """At most `most` of the rows, evenly spread (first and last included)."""
    if len(vectors) <= most:
        return vectors
    picked: FloatArray = vectors[np.linspace(0, len(vectors) - 1, most).round().astype(int)]
    return picked


@dataclass
class Strangers:
    ports: Ports
    settings: Settings
    store: StrangerStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = ObjectStrangerStore(self.ports.stage1)

    def grouping(self) -> Grouping:
        memory = self.settings.memory
        return Grouping(memory.strangers_eps, memory.strangers_min_tracks)

    def _refreshed(self) -> tuple[StrangerState, str, bool]:
        """The stored grouping brought up to date (not saved) and whether it changed."""
        embedder = self.settings.recognition.embedder
        state, etag = self.store.load()
        fresh = state is None or state.embedder != embedder
        if state is None or fresh:
            state = StrangerState(embedder)
        grouping = self.grouping()
        made_with = (grouping.eps, grouping.min_tracks)
        changed = update_points(state, self.ports.memory) or fresh or state.grouping != made_with
        if changed:  # new faces, or other settings (FACEREEL_STRANGERS_EPS/_MIN_TRACKS)
            regroup(state, grouping)
            state.grouping = made_with
        return state, etag, changed

    def refresh(self) -> StrangerState:
        """The grouping, regrouped and saved when the memory changed since."""
        state, etag, changed = self._refreshed()
        if changed:
            try:
                self.store.save(state, etag)
            except StrangersConflictError:  # another writer's grouping is as fresh
                loaded, _ = self.store.load()
                return loaded or state
        return state

    def listing(self) -> dict[str, Any]:
        return listing(self.refresh())

    def _change(self, action: Callable[[StrangerState], T]) -> T:
        for _ in range(ATTEMPTS - 1):
            state, etag, _ = self._refreshed()
            answer = action(state)
            try:
                self.store.save(state, etag)
                return answer
            except StrangersConflictError:
                continue
        state, etag, _ = self._refreshed()
        answer = action(state)
        self.store.save(state, etag)
        return answer

    def merge(self, group_ids: list[str]) -> dict[str, Any]:
        def act(state: StrangerState) -> dict[str, Any]:
            return describe_group(state, merge_groups(state, group_ids))

        return self._change(act)

    def split(self, group_id: str, tracks: list[TrackRef]) -> str:
        return self._change(lambda state: split_group(state, group_id, tracks))

    def faces_of(self, members: list[TrackRef]) -> FloatArray:
        """Every shot embedding of the given tracks, from their current records."""
        blocks = []
        for video in sorted({video for video, _ in members}):
            record = self.ports.memory.get(video)
            wanted = {track for v, track in members if v == video}
            blocks += [t.embeddings for t in (record.tracks if record else [])
                       if t.track_id in wanted and t.person is None]
        if not blocks:
            raise FacereelError("the group's faces are gone from the memory", "not_found")
        return np.vstack(blocks).astype(np.float32)

    def name(self, group_id: str, person: str, force: bool = False,
             relearn: Callable[[Gallery], Relearned] | None = None) -> Named:
        """Enrol a group's faces as `person` and republish the results that change."""
        state, _, _ = self._refreshed()
        vectors = spread(self.faces_of(group_of(state, group_id).members), MAX_NAMED_FACES)
        enrolled, gallery = self._enrol(person, vectors, force)
        self._change(lambda current: current.groups.pop(group_id, None))
        learned = relearn(gallery) if relearn is not None else Relearned()
        self.refresh()
        return Named(person, enrolled, learned)

    def _enrol(self, person: str, vectors: FloatArray, force: bool) -> tuple[int, Gallery]:
        current = self.ports.gallery.load().gallery
        check = None if force else ClaimCheck(current, self.settings.recognition.match_policy())
        staged = Gallery(current.embedder, current.dim)
        for vector in vectors:
            if check is None or check.refusal(person, vector) is None:
                staged.add(person, vector[None, :])
        if not len(staged):
            raise FacereelError(f"every face of the group already matches somebody else; "
                                f"nothing enrolled as {person!r} (force it to enrol)",
                                "matches_other_person")
        added, snapshot = self.ports.gallery.update(lambda gallery: gallery.merge(staged))
        return added, snapshot.gallery
