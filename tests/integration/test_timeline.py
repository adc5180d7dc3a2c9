"""People who come and go: every appearance found, each timed to within half a second."""

from __future__ import annotations

from pathlib import Path

from facereel.core.recognize import Recognizer
from tests.support.media_factory import timeline

TOLERANCE_MS = 500


def test_appearances_are_found_and_timed(recognizer: Recognizer, clips: dict[str, Path],
                                         tmp_path: Path) -> None:
    video = tmp_path / "timeline.mp4"
    spans = timeline(video, [
        (None, 1.5), (clips["test_7"], 1.2), (None, 2.0), (clips["test_0"], 1.5),
        (clips["test_7"], 1.0), (None, 1.5), (clips["test_8"], 1.1),
    ])
    truth = {
        "morgan_freeman": [spans[0], spans[2]],
        "president_trump": [spans[1]],
        "president_obama": [spans[3]],
    }
    result = recognizer.recognize(video)
    assert result.status == "ok"
    found = {p.person: p for p in result.people}
    assert sorted(found) == sorted(truth), result.to_dict()
    for person, expected in truth.items():
        appearances = found[person].appearances
        assert len(appearances) == len(expected), (person, appearances)
        for appearance, (start, end) in zip(appearances, expected, strict=True):
            assert abs(appearance.start_ms - start * 1000) <= TOLERANCE_MS, (person, appearance)
            assert abs(appearance.end_ms - end * 1000) <= TOLERANCE_MS, (person, appearance)
        assert found[person].first_ms == appearances[0].start_ms
        assert found[person].last_ms == appearances[-1].end_ms
    assert result.unknown_faces == 0
