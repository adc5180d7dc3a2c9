"""A video that declares far more pixels to decode than real footage packs into its size is
refused before decoding; real footage, even very static and very compressed, is not."""

from __future__ import annotations

import pytest

from facereel.core.media import VideoInfo, _check_expansion
from facereel.errors import MediaError


@pytest.mark.parametrize(("width", "height", "fps", "seconds", "size"), [
    (1920, 1080, 30, 3600, 22_500_000),  # an hour of 1080p at 50 kb/s
    (3840, 2160, 30, 600, 7_500_000),  # 4K slides at 100 kb/s
    (640, 360, 24, 2, 60_000),  # a coursework clip
])
def test_real_footage_passes(width: int, height: int, fps: int, seconds: int,
                             size: int) -> None:
    _check_expansion("ok.mp4", VideoInfo(width, height, seconds, fps, "h264"), size)


def test_the_attack_is_refused_before_decoding() -> None:
    with pytest.raises(MediaError, match="decompression bomb") as caught:
        _check_expansion("bomb.mp4", VideoInfo(8192, 8192, 20.0, 30.0, "h264"), 209_000)
    assert caught.value.code == "too_large"
