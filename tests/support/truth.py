"""Who appears in each real CSE546 clip: the published ground truth (mapping +
student_data.json), shared by the tests and the benchmarks (which check it against the
grader's mapping before using it)."""

from __future__ import annotations

CLIP_PEOPLE: dict[str, str] = {
    "test_0": "president_trump",
    "test_1": "president_biden",
    "test_2": "mr_bean",
    "test_4": "johnny_dep",
    "test_5": "vin_diesel",
    "test_6": "floki",
    "test_7": "morgan_freeman",
    "test_8": "president_obama",
}
