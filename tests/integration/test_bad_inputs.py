"""Each bad input gives one clear error record; nothing else in the batch is affected."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from facereel.cli import app
from facereel.config import Settings
from facereel.core.recognize import Recognizer
from tests.support.bad_inputs import make_bad_inputs


def test_each_bad_input_has_its_code_and_a_message(recognizer: Recognizer,
                                                   clips: dict[str, Path], tmp_path: Path) -> None:
    expected = make_bad_inputs(tmp_path, clips["test_5"])
    for name, code in expected.items():
        result = recognizer.recognize(tmp_path / name)
        assert result.status == "error", name
        assert result.error is not None
        assert result.error.code == code, (name, result.error)
        assert name in result.error.message
        assert "Traceback" not in result.error.message


def test_a_batch_with_bad_inputs_still_answers_the_good_ones(settings: Settings,
                                                             clips: dict[str, Path],
                                                             tmp_path: Path) -> None:
    bad = make_bad_inputs(tmp_path / "bad", clips["test_5"])
    inputs = [clips["test_7"], *(tmp_path / "bad" / n for n in bad), clips["test_0"]]
    runner = CliRunner()
    outcome = runner.invoke(app, ["recognize", *map(str, inputs), "--json", "--workers", "2",
                                  "--data-dir", str(settings.data_dir)])
    assert outcome.exit_code == 0, outcome.output
    docs = [json.loads(line) for line in outcome.stdout.splitlines()]
    assert [d["video"] for d in docs] == [p.name for p in inputs], "one object per input, in order"
    assert docs[0]["people"][0]["person"] == "morgan_freeman"
    assert docs[-1]["people"][0]["person"] == "president_trump"
    for doc in docs[1:-1]:
        assert doc["status"] == "error"
        assert doc["error"]["code"] == bad[doc["video"]]


def test_exit_code_is_nonzero_only_when_every_input_failed(settings: Settings,
                                                           tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "b.mp4").write_text("nope")
    outcome = CliRunner().invoke(app, ["recognize", str(tmp_path / "a.mp4"),
                                       str(tmp_path / "b.mp4"), "--json",
                                       "--data-dir", str(settings.data_dir)])
    assert outcome.exit_code == 1
    assert len(outcome.stdout.splitlines()) == 2
