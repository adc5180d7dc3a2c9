"""Loaded by Python at start-up in a test's Lambda function process (this folder is put on its
PYTHONPATH): every AWS call the function's code makes through boto3 is appended to the file
`FACEREEL_TEST_CALLS` names, one JSON line each (function, service, operation, the resource
parameters), so a test can check each call against the function's policy in the template."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()
_RESOURCE_PARAMS = ("Bucket", "Key", "Prefix", "QueueUrl", "QueueName", "TableName",
                    "FunctionName")


def _record(params: dict[str, Any], model: Any, **_: Any) -> None:
    entry = {"function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
             "service": model.service_model.endpoint_prefix, "operation": model.name,
             **{name: params[name] for name in _RESOURCE_PARAMS if name in params}}
    if "RequestItems" in params:  # DynamoDB's batch calls name their table(s) here
        entry["TableName"] = ",".join(sorted(params["RequestItems"]))
    with _LOCK, Path(os.environ["FACEREEL_TEST_CALLS"]).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def _install() -> None:
    if not os.environ.get("FACEREEL_TEST_CALLS"):
        return
    import boto3

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-parameter-build", _record)


_install()
