"""Dead letters end to end on the embedded backends: a real `facereel up` whose publishing
fails (the result document's name is taken by a folder, a fault a person can clear) gives the
message up after its attempts; `facereel dead-letters` shows it with the error, `facereel
videos` shows the video dead; once the fault is cleared, `--redrive` sends it back and the
video ends in its result, found by `facereel results --person`."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.conftest import CLIP_PEOPLE
from tests.support.pipeline import Pipeline

CLIP = "test_4"
T = TypeVar("T")


def eventually(look: Callable[[], T | None], what: str, timeout_s: float = 120.0) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = look()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {timeout_s} s")


def json_lines(pipeline: Pipeline, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in pipeline.cli(*args, "--json").stdout.splitlines()]


def test_a_dead_letter_sent_back_ends_in_a_result(tmp_path: Path, cse546: Path,
                                                  clips: dict[str, Path]) -> None:
    data = tmp_path / "data"
    pipeline = Pipeline(data, {"FACEREEL_MAX_ATTEMPTS": "2", "FACEREEL_RETRY_BACKOFF": "0.2"},
                        workers=1)
    pipeline.prepare(cse546)
    taken = data / "buckets" / "output" / f"{CLIP}.mp4.json"
    (taken / "in-the-way").mkdir(parents=True)  # publishing cannot write the document
    pipeline.start()
    try:
        pipeline.wait_log("facereel is up")
        shutil.copy(clips[CLIP], data / "buckets" / "input" / f"{CLIP}.mp4")
        [dead] = eventually(lambda: json_lines(pipeline, "dead-letters"), "a dead letter")
        assert (dead["queue"], dead["key"], dead["attempts"]) == ("publish", f"{CLIP}.mp4", 2)
        assert dead["error"]["message"].startswith("publish: "), dead
        assert dead["error"]["code"] and "result" in dead["body"]
        assert json_lines(pipeline, "dead-letters", "--queue", "publish", "--key",
                          f"{CLIP}.mp4") == [dead]
        assert json_lines(pipeline, "dead-letters", "--queue", "split") == []
        assert json_lines(pipeline, "dead-letters", "--key", "other.mp4") == []
        [video] = json_lines(pipeline, "videos", "--status", "dead")
        assert (video["key"], video["error"]) == (f"{CLIP}.mp4", dead["error"])
        assert json_lines(pipeline, "results") == [], "nothing was published"

        shutil.rmtree(taken)  # the fault is cleared
        [sent] = json_lines(pipeline, "dead-letters", "--redrive")
        assert (sent["key"], sent["queue"]) == (f"{CLIP}.mp4", "publish")
        published = eventually(lambda: json_lines(pipeline, "results", "--person",
                                                  CLIP_PEOPLE[CLIP]), "the result")
        assert [(r["key"], r["status"]) for r in published] == [(f"{CLIP}.mp4", "done")]
        assert json.loads(taken.read_text())["people"][0]["person"] == CLIP_PEOPLE[CLIP]
        assert json_lines(pipeline, "dead-letters") == []
        assert pipeline.cli("dead-letters").stdout.strip() == "0 dead letters"
    finally:
        stopped = pipeline.stop()
    assert stopped == 0, "a clean exit"
