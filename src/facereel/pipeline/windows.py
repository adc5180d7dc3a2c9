"""Cut a long video into windows that hosts analyse separately and a join combines.

Windows are about `window_s` long whatever runs them (one process, two, a fleet of Lambdas),
so results never depend on the number of workers; each boundary is moved to the nearest
keyframe (within a quarter window), so a window starts decoding where it begins. A video up
to 1.5 windows long is one window.
"""

from __future__ import annotations

from pathlib import Path

from facereel.core.media import VideoSource
from facereel.core.sniff import VIDEO_EXTENSIONS
from facereel.errors import FacereelError

Window = tuple[float, float | None]  # [start, end) in seconds; None: to the end
WHOLE: list[Window] = [(0.0, None)]


def cut(duration_s: float, keyframes: list[float], window_s: float) -> list[Window]:
    """Windows of about `window_s` over `duration_s`, boundaries snapped to keyframes."""
    if window_s <= 0 or duration_s <= 1.5 * window_s:
        return list(WHOLE)
    count = max(2, round(duration_s / window_s))
    cuts: list[float] = []
    for number in range(1, count):
        ideal = duration_s * number / count
        near = [k for k in keyframes if abs(k - ideal) <= window_s / 4]
        boundary = min(near, key=lambda k: abs(k - ideal)) if near else ideal
        if not cuts or boundary > cuts[-1] + 1.0:
            cuts.append(boundary)
    bounds: list[float | None] = [0.0, *cuts, None]
    return [(float(bounds[i] or 0.0), bounds[i + 1]) for i in range(len(bounds) - 1)]


def plan_windows(path: Path, window_s: float) -> list[Window]:
    """The windows of the input at `path` (an image, a short or unreadable video: one)."""
    if path.suffix.lower() not in VIDEO_EXTENSIONS or window_s <= 0:
        return list(WHOLE)
    try:
        with VideoSource(path, headers_only=True) as video:
            duration = video.info.duration_s
            long = duration > 1.5 * window_s
            keyframes = video.keyframe_times() if long else []
    except FacereelError:
        return list(WHOLE)  # the analysis reports the problem
    return cut(duration, keyframes, window_s)
