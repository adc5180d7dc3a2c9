"""Golden behaviour on the real CSE546 clips and their published ground truth."""

from __future__ import annotations

from pathlib import Path

from facereel.core.recognize import Recognizer
from tests.conftest import CLIP_PEOPLE


def test_every_clip_is_recognised_with_its_metadata(recognizer: Recognizer,
                                                    clips: dict[str, Path]) -> None:
    assert sorted(clips) == sorted(CLIP_PEOPLE)
    students = {r["name"]: r for r in recognizer.metadata.store.list_people()}  # type: ignore[union-attr]
    for clip, path in clips.items():
        result = recognizer.recognize(path)
        assert result.status == "ok", (clip, result.error)
        assert [p.person for p in result.people] == [CLIP_PEOPLE[clip]], (clip, result.to_dict())
        top = result.people[0]
        expected = students[CLIP_PEOPLE[clip]]
        assert top.metadata["major"] == expected["major"]
        assert top.metadata["year"] == expected["year"]
        assert top.distance < recognizer.options.policy.threshold
        assert top.first_ms <= 500, "on screen from the start"
        assert result.duration_ms - top.last_ms <= 500, "on screen to the end"
        assert len(top.appearances) == 1
        assert result.unknown_faces == 0


def test_open_set_without_the_true_person_answers_unknown(recognizer: Recognizer,
                                                          clips: dict[str, Path]) -> None:
    for clip, path in clips.items():
        gallery = recognizer.gallery.without(CLIP_PEOPLE[clip])
        open_set = Recognizer(recognizer.models, gallery, recognizer.options, None)
        result = open_set.recognize(path)
        assert result.status == "ok", clip
        assert result.people == [], (clip, [(p.person, p.distance) for p in result.people])
        assert result.unknown_faces >= 1, clip
