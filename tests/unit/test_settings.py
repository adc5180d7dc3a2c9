from __future__ import annotations

from pathlib import Path

import pytest

from facereel.config import Settings
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
    assert settings.input.endpoint == "http://ceph.local:7480"
    assert settings.output.name == "explicit", "FACEREEL_* wins over the original names"
    assert settings.stage1.backend == "local" and settings.stage1.name == "stage-1"


def test_partial_bucket_settings_keep_their_default_name(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEREEL_INPUT__ENDPOINT", "http://127.0.0.1:8333")
    monkeypatch.setenv("FACEREEL_INPUT__BACKEND", "s3")
    settings = Settings()
    assert (settings.input.name, settings.input.backend) == ("input", "s3")
