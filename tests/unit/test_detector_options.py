"""Each detector owns its options: parsed from a dict, checked, and reached by the old names."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from facereel.config import Settings
from facereel.core.faces import FaceConfig
from facereel.core.faces.base import BackendOptions, make_detector
from facereel.core.faces.hog import HogDetector, HogOptions, margin_to_score
from facereel.core.faces.options import parse_options
from facereel.core.faces.retinaface import RetinaFaceDetector, RetinaFaceOptions
from facereel.errors import ConfigError


def test_an_unknown_option_is_a_clear_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        make_detector("retinaface", BackendOptions(), {"upsample": 1})
    message = caught.value.message
    assert "'upsample'" in message and "retinaface" in message
    assert "presence_score" in message and "nms_iou" in message


def test_options_are_converted_from_strings_and_range_checked() -> None:
    options = parse_options(RetinaFaceOptions, {"min_score": "0.6", "model": "/m.onnx"}, "rf")
    assert options.min_score == 0.6 and options.model == Path("/m.onnx")
    assert parse_options(HogOptions, {"upsample": "2"}, "hog").upsample == 2
    for bad in ({"upsample": 5}, {"upsample": 1.5}, {"upsample": True}, {"face_score": "high"}):
        with pytest.raises(ConfigError):
            parse_options(HogOptions, bad, "detector 'hog'")
    with pytest.raises(ConfigError, match=r"0\.\.1"):
        parse_options(RetinaFaceOptions, {"presence_score": 1.5}, "detector 'retinaface'")


def test_hog_keeps_its_margins_and_reports_0_to_1_scores() -> None:
    detector = make_detector("hog", BackendOptions(), {"face_score": 0.25})
    assert isinstance(detector, HogDetector)
    assert detector.options == HogOptions(min_score=-0.5, face_score=0.25, upsample=0)
    assert detector.presence_score == margin_to_score(0.25)
    assert margin_to_score(0.0) == 0.5
    margins = [-2.0, -0.5, 0.0, 0.3, 1.0, 3.0]
    scores = [margin_to_score(m) for m in margins]
    assert scores == sorted(scores) and all(0.0 < s < 1.0 for s in scores)


def test_old_flat_names_reach_the_hog_backend(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("FACEREEL_DETECTOR", "hog")
    monkeypatch.setenv("FACEREEL_MIN_SCORE", "-0.3")
    monkeypatch.setenv("FACEREEL_FACE_SCORE", "0.2")
    monkeypatch.setenv("FACEREEL_UPSAMPLE", "1")
    with pytest.warns(DeprecationWarning, match="FACEREEL_DETECTOR_OPTIONS"):
        config = Settings().recognition.face_config()
    detector = config.make_detector()
    assert isinstance(detector, HogDetector)
    assert detector.options == HogOptions(min_score=-0.3, face_score=0.2, upsample=1)
    # detector_options wins over the deprecated names
    monkeypatch.setenv("FACEREEL_DETECTOR_OPTIONS", '{"upsample": 0}')
    with pytest.warns(DeprecationWarning):
        options = Settings().recognition.face_config().make_detector()
    assert isinstance(options, HogDetector) and options.options.upsample == 0


def test_old_flat_names_are_ignored_with_a_warning_for_another_detector(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEREEL_FACE_SCORE", "0.2")
    with pytest.warns(DeprecationWarning, match="only apply to detector 'hog'"):
        config = Settings().recognition.face_config()
    detector = config.make_detector()
    assert isinstance(detector, RetinaFaceDetector)
    assert detector.options == RetinaFaceOptions()


def test_defaults_retinaface_at_its_own_scale_and_no_warning(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = Settings()
        config = settings.recognition.face_config()
        options = settings.recognition.recognize_options()
    assert config.detector == "retinaface" and config.detect_size is None
    assert options.presence_score == RetinaFaceOptions().presence_score
    assert FaceConfig(detector="hog").presence_score == 0.5


def test_deprecated_clear_threshold_becomes_a_slack(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEREEL_THRESHOLD", "0.5")
    assert Settings().recognition.recognize_options().policy.clear_slack == 0.02
    monkeypatch.setenv("FACEREEL_CLEAR_THRESHOLD", "0.58")
    with pytest.warns(DeprecationWarning, match="FACEREEL_CLEAR_SLACK"):
        policy = Settings().recognition.recognize_options().policy
    assert policy.threshold == 0.5 and policy.clear_slack == pytest.approx(0.08)
