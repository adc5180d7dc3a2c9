from __future__ import annotations

import pytest

from facereel.core.sampling import parse_sampling
from facereel.errors import ConfigError


def test_parse_sampling_modes() -> None:
    assert parse_sampling("adaptive").refine
    assert parse_sampling("first").decode_mode == "first"
    assert parse_sampling("keyframes").decode_mode == "key"
    fps = parse_sampling("fps=4")
    assert fps.mode == "fps" and fps.interval_s == 0.25 and fps.describe() == "fps=4"
    assert parse_sampling(" ALL ").every_frame
    for bad in ("fps=0", "fps=x", "sometimes", ""):
        with pytest.raises(ConfigError):
            parse_sampling(bad)
