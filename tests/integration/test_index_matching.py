"""Matching the real clips through the index of a large gallery gives exact matching's answer.

The 11 real people are enrolled among 20k synthetic faces spread around them the way
dlib-resnet's vectors are (tests/support/synthetic_faces.py), with the tiers lowered so this
gallery is matched through the FAISS IVF index as a million-face one would be.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from facereel.core import gallery as gallery_module
from facereel.core.gallery import Gallery
from facereel.core.index import FaissIvfIndex, auto
from facereel.core.match import Decision, decide
from facereel.core.recognize import PartialAnalysis, Recognizer, combine
from tests.conftest import CLIP_PEOPLE
from tests.support.synthetic_faces import synthetic_faces


def _crowded(real: Gallery) -> Gallery:
    crowd = synthetic_faces(2_000, 10, seed=21, mean=real.vectors.mean(axis=0))
    gallery = Gallery(real.embedder, real.dim, list(real.names), real.vectors.copy())
    gallery.extend([f"synthetic_{row // 10}" for row in range(len(crowd.vectors))],
                   crowd.vectors)
    return gallery


def _answers(gallery: Gallery, parts: dict[str, PartialAnalysis],
             recognizer: Recognizer) -> dict[str, list[tuple[str | None, str | None, float]]]:
    def answer(decision: Decision) -> tuple[str | None, str | None, float]:
        return decision.person, decision.nearest, round(decision.distance, 6)

    policy = recognizer.options.policy
    return {clip: [answer(decide(gallery, track.embeddings, policy))
                   for track in part.analysis.tracks if track.embeddings]
            for clip, part in parts.items()}


def test_real_clips_match_the_same_through_the_index(
        recognizer: Recognizer, clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gallery_module, "FULL_COMPARISON", 500)
    monkeypatch.setattr(auto, "EXACT_MAX", 5_000)
    parts = {clip: recognizer.analyze(path) for clip, path in clips.items()}
    crowded = _crowded(recognizer.gallery)
    through_index = _answers(crowded, parts, recognizer)
    assert isinstance(crowded.index(), FaissIvfIndex)
    alone = _answers(recognizer.gallery, parts, recognizer)
    monkeypatch.setattr(gallery_module, "FULL_COMPARISON", 10**9)
    assert _answers(crowded, parts, recognizer) == through_index, "exact matching agrees"
    for clip, answers in alone.items():  # 20k more faces around them steal no real match
        crowded_answers = through_index[clip]
        assert [c for c, a in zip(crowded_answers, answers, strict=True) if a[0]] == [
            a for a in answers if a[0]], clip
        # a track nobody real matches may be near one of the crowd (whose identities sit
        # ~0.6 from everyone), never near a real person it was not near before
        assert all(c[0] is None or c[0].startswith("synthetic_")
                   for c, a in zip(crowded_answers, answers, strict=True) if a[0] is None), clip
    for clip, part in parts.items():
        result = combine(part.video, [part], crowded, recognizer.options, None)
        assert [p.person for p in result.people] == [CLIP_PEOPLE[clip]], clip
