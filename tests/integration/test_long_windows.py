"""A long video cut into windows gives the same answer whoever analyses the windows: one
process or two in the one-shot batch, and the pipeline's stages (split fans the windows out,
the last one in starts the join)."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest

from facereel.config import Settings
from facereel.core.results import VideoResult
from facereel.pipeline.definition import run_stage
from facereel.pipeline.stages import Delivery
from facereel.pipeline.windows import cut, plan_windows
from facereel.runtime.batch import recognize_paths
from tests.support.media_factory import timeline
from tests.support.stages import context_of, ports_of, run_through


@pytest.fixture(scope="module")
def long_video(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
               ) -> tuple[Path, dict[str, tuple[float, float]]]:
    video = tmp_path_factory.mktemp("long") / "long.mp4"
    # Obama and Freeman are on screen across window boundaries (3.4 s, 6.75 s): each is still
    # one appearance afterwards.
    spans = timeline(video, [(None, 2.0), (clips["test_8"], 1.5), (None, 2.0),
                             (clips["test_7"], 1.5), (None, 4.0), (clips["test_0"], 1.5),
                             (None, 1.0)])
    expected = {"president_obama": spans[0], "morgan_freeman": spans[1],
                "president_trump": spans[2]}
    return video, expected


def _check(result: VideoResult, expected: dict[str, tuple[float, float]]) -> None:
    assert result.status == "ok"
    found = {p.person: p.appearances for p in result.people}
    assert sorted(found) == sorted(expected)
    for person, (start, end) in expected.items():
        assert len(found[person]) == 1, (person, found[person])
        assert abs(found[person][0].start_ms - start * 1000) <= 500
        assert abs(found[person][0].end_ms - end * 1000) <= 500


def test_windows_are_cut_at_nearby_keyframes() -> None:
    assert cut(50.0, [], 60.0) == [(0.0, None)], "up to 1.5 windows: whole"
    windows = cut(300.0, [0.0, 58.0, 61.0, 119.5, 185.0, 240.2], 60.0)
    assert windows == [(0.0, 61.0), (61.0, 119.5), (119.5, 185.0), (185.0, 240.2),
                       (240.2, None)], "snapped to a keyframe within a quarter window"


def test_the_batch_answers_the_same_for_one_and_two_workers(
        settings: Settings, long_video: tuple[Path, dict[str, tuple[float, float]]]) -> None:
    video, expected = long_video
    windows = plan_windows(video, 3.0)
    assert len(windows) == 4 and windows[0][0] == 0.0 and windows[-1][1] is None
    assert all(a[1] == b[0] for a, b in pairwise(windows)), "windows tile the video"
    one = dict(recognize_paths([video], settings.with_overrides(window=3.0, workers=1)))[0]
    two = dict(recognize_paths([video], settings.with_overrides(window=3.0, workers=2)))[0]
    _check(one, expected)
    assert [p.person for p in one.people] == [p.person for p in two.people]
    assert [p.appearances for p in one.people] == [p.appearances for p in two.people]
    assert one.duration_ms == two.duration_ms


def test_the_pipeline_fans_windows_out_and_joins_them(
        settings: Settings, long_video: tuple[Path, dict[str, tuple[float, float]]],
        tmp_path: Path) -> None:
    video, expected = long_video
    pipeline = settings.with_overrides(data_dir=tmp_path, gallery=settings.storage.gallery_path,
                                       metadata_db=tmp_path / "meta.db", window=3.0)
    ports = ports_of(pipeline)
    context = context_of(pipeline, ports)
    etag = ports.input.put_file("long.mp4", video).etag
    fan = run_stage("split", Delivery({"key": "long.mp4", "etag": etag}), context)
    assert [name for name, _ in fan] == ["analyze"] * 4
    joins = []
    for name, body in reversed(fan):  # windows finish in any order
        joins += run_stage(name, Delivery(body), context)
    assert joins == [("recognize", {"key": "long.mp4", "etag": etag, "windows": 4})], \
        "only the last window in starts the join"
    assert run_stage("analyze", Delivery(fan[0][1], attempt=2), context) == joins, \
        "a redelivered window re-sends the join (its first run may have died before sending)"
    assert run_stage("analyze", Delivery(fan[1][1]), context) == [], "a duplicate does not"
    run_through(context, *joins[0])
    document = ports.output.get_bytes("long.mp4.json")
    _check(VideoResult.from_dict(json.loads(document)), expected)
    batch = dict(recognize_paths([video], pipeline.with_overrides(workers=2)))[0]
    piped = VideoResult.from_dict(json.loads(document))
    assert [p.appearances for p in piped.people] == [p.appearances for p in batch.people]
