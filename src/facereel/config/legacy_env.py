"""Read the variable names of the original coursework deployments (from the environment or a
`.env` file), so an existing setup moves over without edits.

| original name                              | facereel setting                              |
|--------------------------------------------|-----------------------------------------------|
| AWS_REGION, AWS_DEFAULT_REGION             | aws_region                                    |
| ACCESS_KEY_ID, AWS_ACCESS_KEY_ID           | aws_access_key                                |
| SECRET_ACCESS_KEY, AWS_SECRET_ACCESS_KEY   | aws_secret_key                                |
| S3_INPUT_BUCKET                            | input bucket on S3 (on CEPH_ENDPOINT_URL if set) |
| S3_STAGE1_BUCKET, S3_STAGE_1_BUCKET        | stage-1 bucket on S3 (beside the input)       |
| S3_OUTPUT_BUCKET                           | output bucket on AWS S3 (or S3_ENDPOINT_URL)  |
| CEPH_ENDPOINT_URL                          | endpoint of the private input/stage-1 buckets |
| CEPH_ACCESS_KEY_ID, CEPH_SECRET_ACCESS_KEY | their credentials (default: the AWS ones)     |
| S3_ENDPOINT_URL                            | endpoint of the output bucket                 |
| TABLE_NAME                                 | DynamoDB people table (metadata on DynamoDB)  |

Explicit `FACEREEL_*` settings win over these.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotenv import dotenv_values


def _lookup(env_file: Path | None) -> dict[str, str]:
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ)
    return values


def _first(values: dict[str, str], *names: str) -> str | None:
    for name in names:
        if values.get(name):
            return values[name]
    return None


def _bucket(name: str, endpoint: str | None, access: str | None,
            secret: str | None) -> dict[str, Any]:
    bucket: dict[str, Any] = {"name": name, "backend": "s3"}
    if endpoint:
        bucket["endpoint"] = endpoint
    if access and secret:
        bucket["access_key"], bucket["secret_key"] = access, secret
    return bucket


def legacy_settings(env_file: Path | None = Path(".env")) -> dict[str, Any]:
    """Settings values implied by the original deployment's variables (only those present)."""
    env = _lookup(env_file)
    found: dict[str, Any] = {}
    region = _first(env, "AWS_REGION", "AWS_DEFAULT_REGION")
    access = _first(env, "ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")
    secret = _first(env, "SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")
    for key, value in (("aws_region", region), ("aws_access_key", access),
                       ("aws_secret_key", secret)):
        if value:
            found[key] = value
    ceph = _first(env, "CEPH_ENDPOINT_URL")
    ceph_access = _first(env, "CEPH_ACCESS_KEY_ID", "CEPH_ACCESS_KEY") or access
    ceph_secret = _first(env, "CEPH_SECRET_ACCESS_KEY", "CEPH_SECRET_KEY") or secret
    if name := _first(env, "S3_INPUT_BUCKET"):
        found["input"] = _bucket(name, ceph, ceph_access, ceph_secret)
    if name := _first(env, "S3_STAGE1_BUCKET", "S3_STAGE_1_BUCKET"):
        found["stage1"] = _bucket(name, ceph, ceph_access, ceph_secret)
    if name := _first(env, "S3_OUTPUT_BUCKET"):
        found["output"] = _bucket(name, _first(env, "S3_ENDPOINT_URL"), access, secret)
    if table := _first(env, "TABLE_NAME"):
        found["metadata_backend"] = "dynamodb"
        found["table_name"] = table
    return found
