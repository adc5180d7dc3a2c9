"""Which frames of a video get analysed.

- `adaptive` (default): a full-frame detection every `interval` seconds (0.5 s: anyone on screen
  for 1 s or more is seen at least twice), plus the last frame; when a face appears or leaves
  between two such frames, the frames decoded in between are bisected to time it to within
  `precision`. Faces are followed from frame to frame, so each is embedded once (more only while
  its identity is uncertain). Only reference frames are decoded (B-frames are skipped).
- `first`: the first frame only. `keyframes`: every keyframe. `fps=N`: N frames per second.
  `all`: every frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from facereel.core.media import DecodeMode
from facereel.errors import ConfigError

Mode = Literal["adaptive", "first", "keyframes", "fps", "all"]


@dataclass(frozen=True, slots=True)
class SamplingPlan:
    mode: Mode = "adaptive"
    interval_s: float = 0.5
    precision_s: float = 0.25

    @property
    def decode_mode(self) -> DecodeMode:
        if self.mode == "keyframes":
            return "key"
        if self.mode == "first":
            return "first"
        if self.mode == "all":
            return "all"
        return "nonref"

    @property
    def refine(self) -> bool:
        return self.mode == "adaptive"

    @property
    def include_last(self) -> bool:
        return self.mode in ("adaptive", "fps")

    @property
    def every_frame(self) -> bool:
        return self.mode in ("all", "keyframes")

    def describe(self) -> str:
        if self.mode == "fps":
            return f"fps={1.0 / self.interval_s:g}"
        return self.mode


def parse_sampling(text: str, interval_s: float = 0.5, precision_s: float = 0.25) -> SamplingPlan:
    """`adaptive`, `first`, `keyframes`, `all`, or `fps=N` (N > 0)."""
    text = text.strip().lower()
    if text in ("adaptive", "first", "keyframes", "all"):
        return SamplingPlan(text, interval_s, precision_s)  # type: ignore[arg-type]
    match = re.fullmatch(r"fps\s*=\s*([0-9]*\.?[0-9]+)", text)
    if match and float(match.group(1)) > 0:
        return SamplingPlan("fps", 1.0 / float(match.group(1)), precision_s)
    raise ConfigError(
        f"unknown sampling '{text}': use adaptive, first, keyframes, all, or fps=N (e.g. fps=2)"
    )
