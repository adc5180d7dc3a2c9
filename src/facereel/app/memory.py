"""The face memory's use cases on one deployment's ports, shared by the CLI and the HTTP API:
search by a person's gallery vectors or by a face's embedding, forget a video or a person,
update the index snapshot, and say how much is remembered. Callers write the audit lines
(they know who is asking)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from facereel.app.relabel import Relabelled, relabel
from facereel.app.strangers import Named, Strangers
from facereel.config import Settings
from facereel.core.embedders import embedder_dim
from facereel.core.gallery import Gallery
from facereel.core.types import FloatArray
from facereel.errors import FacereelError
from facereel.memory.forget import Forgotten, forget_person, forget_video
from facereel.memory.indexer import IndexReport, update_index
from facereel.memory.relearn import Relearned, Rules, relearn
from facereel.memory.search import Match, Searcher, tail
from facereel.pipeline.wiring import Ports
from facereel.ports.gallery import GalleryStore
from facereel.ports.metadata import MetadataLookup

MAX_THRESHOLD = 2.0  # unit vectors are at most 2 apart


@dataclass
class FaceMemory:
    ports: Ports
    settings: Settings

    def __post_init__(self) -> None:
        embedder = self.settings.recognition.embedder
        self.searcher = Searcher(self.ports.memory, self.ports.stage1, embedder,
                                 embedder_dim(embedder))

    def threshold(self, given: float | None) -> float:
        if given is None:
            return self.settings.recognition.threshold
        if not 0 < given <= MAX_THRESHOLD:
            raise FacereelError(f"threshold {given} is not in (0, {MAX_THRESHOLD}]",
                                "invalid_request")
        return given

    def person_vectors(self, name: str) -> FloatArray:
        vectors = self.ports.gallery.load().gallery.vectors_of(name)
        if not len(vectors):
            raise FacereelError(f"nobody called {name!r} is enrolled (see facereel gallery "
                                "list)", "not_found")
        return vectors

    def search_person(self, name: str, threshold: float | None = None,
                      limit: int | None = None) -> list[Match]:
        return self.searcher.search(self.person_vectors(name), self.threshold(threshold), limit)

    def search_face(self, vector: FloatArray, threshold: float | None = None,
                    limit: int | None = None) -> list[Match]:
        return self.searcher.search(np.atleast_2d(vector), self.threshold(threshold), limit)

    def forget_video(self, video: str) -> Forgotten:
        return forget_video(self.ports.memory, self.ports.stage1, video)

    def forget_person(self, name: str) -> Forgotten:
        return forget_person(self.ports.memory, self.ports.gallery, self.ports.metadata,
                             self.searcher, name, self.settings.recognition.threshold)

    def update_index(self) -> IndexReport:
        """The index snapshot brought up to date, then the strangers regrouped (the same
        single writer)."""
        embedder = self.settings.recognition.embedder
        report = update_index(self.ports.memory, self.ports.stage1, embedder,
                              embedder_dim(embedder), self.settings.memory.memory_retention_days)
        report.groups = len(self.strangers.refresh().groups)
        return report

    @cached_property
    def strangers(self) -> Strangers:
        return Strangers(self.ports, self.settings)

    def name_group(self, group_id: str, person: str, force: bool = False) -> Named:
        """Enrol a group of strangers as `person`; republish the results that change."""
        return self.strangers.name(group_id, person, force,
                                   lambda gallery: self.relearn(gallery, [person]))

    def rules(self) -> Rules:
        recognition = self.settings.recognition
        return Rules(recognition.match_policy(), recognition.recognize_options().appearance_gap_s,
                     MetadataLookup(self.ports.metadata))

    def relearn(self, gallery: Gallery | None = None,
                people: Sequence[str] | None = None) -> Relearned:
        """Republish the past results that `gallery` (default: the current one) changes;
        with `people` (those who changed), only the videos with a face near one of theirs."""
        current = gallery if gallery is not None else self.ports.gallery.load().gallery
        if people is None:
            return relearn(self.ports, current, self.rules())
        return self.relearn_near(current, [current.vectors_of(name) for name in people])

    def relearn_near(self, gallery: Gallery, faces: Sequence[FloatArray]) -> Relearned:
        """Republish what `gallery` changes among the videos with a remembered shot within
        reach of `faces` (those of the people who changed: added, or removed from it)."""
        policy = self.settings.recognition.match_policy()
        reach = policy.threshold + policy.clear_slack + policy.clear_margin
        vectors = np.vstack([*faces, np.zeros((0, gallery.dim), dtype=np.float32)])
        videos = self.searcher.videos_near(vectors, reach) if len(vectors) else []
        return relearn(self.ports, gallery, self.rules(), videos)

    def relabel(self, old: str, new: str, merge: bool = False,
                store: GalleryStore | None = None) -> Relabelled:
        """Rename `old` to `new` (or merge `old` into `new`), then republish what changes."""
        faces, moved, gallery = relabel(store or self.ports.gallery, self.ports.metadata,
                                        old, new, merge)
        return Relabelled(new, faces, moved, self.relearn(gallery, [new]))

    def status(self) -> dict[str, object]:
        """How much is remembered, and how far the index snapshot is behind."""
        summaries = list(self.ports.memory.videos())
        snapshot = self.searcher.snapshot()
        return {"videos": len(summaries), "tracks": sum(s.tracks for s in summaries),
                "embedders": sorted({s.embedder for s in summaries}),
                "indexed_vectors": len(snapshot.index) if snapshot is not None else 0,
                "indexed_videos": len(snapshot.videos) if snapshot is not None else 0,
                "changed_since_index": len(tail(self.ports.memory, snapshot))
                if snapshot is not None else len(summaries)}
