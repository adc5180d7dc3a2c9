from __future__ import annotations

import json
from pathlib import Path

from facereel.app.grading import grade, load_results, read_mapping
from facereel.core.results import (
    Appearance,
    PersonResult,
    VideoResult,
    error_result,
    seed_csv,
    seed_txt,
)


def _result(video: str, person: str | None) -> VideoResult:
    people = []
    if person:
        people.append(PersonResult(person, 0.8, 0.4, 0, 1000, 3, (1, 2, 3, 4),
                                   [Appearance(0, 1000)], {"major": "math", "year": "senior"}))
    return VideoResult(video, "ok" if person else "no_face", 1000, 3, people)


def test_result_document_round_trips_through_json() -> None:
    original = _result("a.mp4", "morgan_freeman")
    doc = json.loads(json.dumps(original.to_dict()))
    assert doc["people"][0]["box"] == [1, 2, 3, 4]
    assert doc["people"][0]["appearances"] == [{"start_ms": 0, "end_ms": 1000}]
    assert "error" not in doc
    assert VideoResult.from_dict(doc) == original
    failed = error_result("b.mp4", "empty_file", "b.mp4: file is empty")
    assert failed.to_dict()["error"] == {"code": "empty_file", "message": "b.mp4: file is empty"}


def test_seed_files_match_the_coursework_format() -> None:
    result = _result("test_7.mp4", "morgan_freeman")
    assert seed_txt(result) == "morgan_freeman\n"
    assert seed_csv(result) == "name,major,year\nmorgan_freeman,math,senior\n"
    assert seed_txt(_result("x.mp4", None)) == "unknown\n"


def test_grader_rule_and_result_loading(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping"
    mapping.write_text("a.mp4:math,senior\nb.mp4:physics,junior\nc.mp4:math,senior\n")
    students = [{"name": "morgan_freeman", "major": "math", "year": "senior"},
                {"name": "president_trump", "major": "physics", "year": "junior"}]
    folder = tmp_path / "results"
    folder.mkdir()
    for result in (_result("a.mp4", "morgan_freeman"), _result("b.mp4", "morgan_freeman")):
        (folder / f"{Path(result.video).stem}.json").write_text(json.dumps(result.to_dict()))
    predictions = {r.video: r.people[0].person for r in load_results(folder)}

    outcome = grade(predictions, read_mapping(mapping), students)
    assert str(outcome) == "1/3"
    assert {w[0] for w in outcome.wrong} == {"b.mp4", "c.mp4"}
