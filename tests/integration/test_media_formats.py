"""Codecs, containers, rotation, odd sizes, variable frame rate and stills: all recognised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facereel.core.media import VideoSource
from facereel.core.recognize import Recognizer
from tests.conftest import CLIP_PEOPLE
from tests.support.media_factory import read_frames, transcode

FORMATS = [("h264", "mov"), ("hevc", "mp4"), ("hevc", "mkv"), ("vp9", "webm"), ("av1", "mkv"),
           ("av1", "mp4")]


@pytest.mark.parametrize(("codec", "container"), FORMATS)
def test_codecs_and_containers(codec: str, container: str, recognizer: Recognizer,
                               clips: dict[str, Path], tmp_path: Path) -> None:
    video = transcode(clips["test_7"], tmp_path / f"clip.{container}", codec=codec, seconds=1.0)
    result = recognizer.recognize(video)
    assert result.status == "ok", result.error
    assert [p.person for p in result.people] == [CLIP_PEOPLE["test_7"]]


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_is_applied(rotation: int, recognizer: Recognizer,
                                      clips: dict[str, Path], tmp_path: Path) -> None:
    video = transcode(clips["test_8"], tmp_path / "phone.mp4", seconds=1.0, height=360,
                      rotation=rotation)
    with VideoSource(video) as source:
        picture = next(source.pictures())
        assert picture.height == 360 and picture.width > picture.height, "shown upright"
    result = recognizer.recognize(video)
    assert [p.person for p in result.people] == ["president_obama"]
    box = result.people[0].box
    assert box[2] <= picture.width and box[3] <= picture.height


def test_odd_sizes_and_variable_frame_rate(recognizer: Recognizer, clips: dict[str, Path],
                                           tmp_path: Path) -> None:
    odd = transcode(clips["test_0"], tmp_path / "odd.mkv", codec="vp9", seconds=1.5,
                    height=357, width=641)
    vfr = transcode(clips["test_4"], tmp_path / "vfr.mp4", seconds=1.5, vfr=True)
    with VideoSource(vfr) as source:
        times = [p.time_s for p in source.pictures()]
    gaps = np.diff(times)
    assert gaps.max() > 1.5 * gaps.min(), "the test video really has a variable frame rate"
    for video, clip in ((odd, "test_0"), (vfr, "test_4")):
        result = recognizer.recognize(video)
        assert [p.person for p in result.people] == [CLIP_PEOPLE[clip]], video.name


@pytest.mark.parametrize("suffix", ["jpg", "png", "webp"])
def test_still_images_take_the_same_path(suffix: str, recognizer: Recognizer,
                                         clips: dict[str, Path], tmp_path: Path) -> None:
    _, rgb = next(read_frames(clips["test_2"], start=0.5))
    path = tmp_path / f"still.{suffix}"
    Image.fromarray(rgb).save(path)
    result = recognizer.recognize(path)
    assert result.status == "ok"
    assert [p.person for p in result.people] == ["mr_bean"]
    assert result.frames_sampled == 1 and result.people[0].first_ms == 0


def test_exif_orientation_of_photos_is_applied(recognizer: Recognizer, clips: dict[str, Path],
                                               tmp_path: Path) -> None:
    _, rgb = next(read_frames(clips["test_7"]))
    turned = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1)))  # stored turned left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": the camera was held sideways
    path = tmp_path / "sideways.jpg"
    turned.save(path, exif=exif)
    result = recognizer.recognize(path)
    assert [p.person for p in result.people] == ["morgan_freeman"]
