from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from facereel.config import Settings, flat_names
from facereel.config.legacy_env import legacy_settings


def test_original_deployment_names_map_to_settings(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "AWS_REGION=eu-west-1\nACCESS_KEY_ID=AKIA1\nSECRET_ACCESS_KEY=s3cret\n"
        "S3_INPUT_BUCKET=videos-in\nS3_OUTPUT_BUCKET=results-out\nTABLE_NAME=student_table\n"
        "CEPH_ENDPOINT_URL=http://ceph.local:7480\n"
    )
    values = legacy_settings(env_file)
    assert values["aws_region"] == "eu-west-1"
    assert values["input"] == {"name": "videos-in", "backend": "s3",
                               "endpoint": "http://ceph.local:7480", "access_key": "AKIA1",
                               "secret_key": "s3cret"}
    assert values["output"]["name"] == "results-out" and "endpoint" not in values["output"]
    assert values["metadata_backend"] == "dynamodb" and values["table_name"] == "student_table"

    monkeypatch.chdir(tmp_path)  # Settings reads ./.env
    monkeypatch.setenv("FACEREEL_OUTPUT__NAME", "explicit")
    settings = Settings()
    assert settings.storage.input.endpoint == "http://ceph.local:7480"
    assert settings.storage.output.name == "explicit", "FACEREEL_* wins over the original names"
    assert settings.storage.stage1.backend == "local" and settings.storage.stage1.name == "stage-1"


def test_partial_bucket_settings_keep_their_default_name(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEREEL_INPUT__ENDPOINT", "http://127.0.0.1:8333")
    monkeypatch.setenv("FACEREEL_INPUT__BACKEND", "s3")
    settings = Settings()
    assert (settings.storage.input.name, settings.storage.input.backend) == ("input", "s3")


def test_flat_and_sectioned_names_reach_the_same_field(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEREEL_THRESHOLD", "0.5")
    monkeypatch.setenv("FACEREEL_PIPELINE__WORKERS", "3")
    monkeypatch.setenv("FACEREEL_SEGMENT", "30")  # the old name of `window`
    settings = Settings()
    assert settings.recognition.threshold == 0.5
    assert settings.pipeline.workers == 3 and settings.pipeline.window == 30
    assert Settings(threshold=0.4, workers=2).recognition.threshold == 0.4, "keywords win"
    monkeypatch.setenv("FACEREEL_RECOGNITION__THRESHOLD", "0.55")
    assert Settings().recognition.threshold == 0.55, "the sectioned name is the specific one"


def test_sources_keep_their_priority(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("FACEREEL_VISIBILITY=30\nFACEREEL_PORT=9000\n"
                                   "AWS_REGION=eu-west-3\nFACEREEL_AWS_REGION=eu-north-1\n")
    monkeypatch.setenv("FACEREEL_PORT", "9100")
    settings = Settings()
    assert settings.storage.visibility == 30, ".env is read"
    assert settings.http.port == 9100, "the environment wins over .env"
    assert settings.storage.aws_region == "eu-north-1", ".env's FACEREEL_* wins over AWS_*"
    assert settings.with_overrides(port=0).http.port == 0, "the command line wins over all"


def test_secrets_are_never_printed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEREEL_API_KEYS", "k-one,k-two")
    monkeypatch.setenv("FACEREEL_AWS_SECRET_KEY", "aws-secret-value")
    monkeypatch.setenv("FACEREEL_INPUT__SECRET_KEY", "bucket-secret-value")
    monkeypatch.setenv("FACEREEL_INVOKE_KEY", "invoke-key-value")
    settings = Settings()
    shown = repr(settings) + str(settings) + str(settings.model_dump())
    for secret in ("k-one", "aws-secret-value", "bucket-secret-value", "invoke-key-value"):
        assert secret not in shown
    assert settings.http.api_key_list == ["k-one", "k-two"]
    assert settings.openfaas.invoke_key.get_secret_value() == "invoke-key-value"


def test_command_line_values_are_validated(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ValidationError, match="workers"):
        settings.with_overrides(workers=-1)
    with pytest.raises(ValidationError, match="unknown sampling"):
        settings.with_overrides(sampling="sometimes")
    changed = settings.with_overrides(workers=4, sampling="first", data_dir=tmp_path / "x")
    assert (changed.pipeline.workers, changed.recognition.sampling) == (4, "first")
    assert changed.data_dir == tmp_path / "x" and settings.pipeline.workers == 0


def test_flat_names_are_unique_across_sections() -> None:
    names = flat_names()
    assert names["threshold"] == "recognition" and names["workers"] == "pipeline"
    assert names["api_keys"] == "http" and names["app_workers_max"] == "image_tier"
    assert names["input"] == "storage" and names["gallery_refresh"] == "storage"
    assert names["openfaas_secrets"] == "openfaas" and names["invoke_key"] == "openfaas"
    assert names["engine"] == "ray" and names["ray_address"] == "ray"


def test_ray_settings_by_flat_name_and_refused_values(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEREEL_ENGINE", "ray")
    monkeypatch.setenv("FACEREEL_RAY_ADDRESS", "10.0.0.5:6379")
    monkeypatch.setenv("FACEREEL_RAY__RAY_ACTORS_MAX", "8")
    settings = Settings()
    assert (settings.ray.engine, settings.ray.ray_address) == ("ray", "10.0.0.5:6379")
    assert settings.ray.ray_actors_max == 8 and settings.ray.ray_inflight == 2
    monkeypatch.setenv("FACEREEL_ENGINE", "spark")
    with pytest.raises(ValidationError, match="'local' or 'ray'"):
        Settings()


def test_deploy_settings_name_a_known_stage(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEREEL_STAGE", "recognise")  # an old name is the stage it became
    monkeypatch.setenv("FACEREEL_INVOKE_MODE", "chain")
    settings = Settings()
    assert (settings.deploy.stage, settings.deploy.invoke_mode) == ("recognize", "chain")
    assert settings.deploy.function_name("publish") == "facereel-publish"
    assert flat_names()["lambda_endpoint"] == "deploy"
    monkeypatch.setenv("FACEREEL_STAGE", "transcode")
    with pytest.raises(ValidationError, match="no stage 'transcode'"):
        Settings()
