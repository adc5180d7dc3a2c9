"""A long video cut into windows for several workers gives the same answer as one pass."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from facereel.config import Settings
from facereel.runtime.batch import recognize_paths, windows
from tests.support.media_factory import timeline


def test_windows_share_a_video_and_merge_back(settings: Settings, clips: dict[str, Path],
                                              tmp_path: Path) -> None:
    video = tmp_path / "long.mp4"
    # Freeman is on screen across the 6 s window boundary: still one appearance afterwards.
    spans = timeline(video, [(None, 2.0), (clips["test_8"], 1.5), (None, 2.0),
                             (clips["test_7"], 1.5), (None, 4.0), (clips["test_0"], 1.5),
                             (None, 1.0)])
    cut = windows(video, 4.0, workers=2)
    assert len(cut) == 4 and cut[0][0] == 0.0 and cut[-1][1] is None
    assert all(a[1] == b[0] for a, b in pairwise(cut)), "windows tile the video"

    split = dict(recognize_paths([video], settings.with_overrides(segment=4.0, workers=2)))[0]
    whole = dict(recognize_paths([video], settings.with_overrides(workers=1)))[0]
    assert split.status == whole.status == "ok"
    expected = {"president_obama": spans[0], "morgan_freeman": spans[1],
                "president_trump": spans[2]}
    for result in (split, whole):
        found = {p.person: p.appearances for p in result.people}
        assert sorted(found) == sorted(expected)
        for person, (start, end) in expected.items():
            assert len(found[person]) == 1, (person, found[person])
            assert abs(found[person][0].start_ms - start * 1000) <= 500
            assert abs(found[person][0].end_ms - end * 1000) <= 500
    assert split.duration_ms == whole.duration_ms
