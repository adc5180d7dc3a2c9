"""Lambda events as AWS shapes them, read by the handler's event parsing and by the handler
itself (in-process, on embedded storage): URL-encoded keys, test events and other buckets
skipped, the stage from the queue's ARN, and a partial batch response in which only the bad
records come back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from facereel.config.hosts import DeploySettings
from facereel.config.sections import StorageSettings
from facereel.core.results import error_result
from facereel.deploy import aws_lambda
from facereel.deploy.aws_events import (
    START,
    BadEventError,
    Work,
    chain_payload,
    chain_work,
    kind,
    queue_stage,
    record_work,
    task_name,
    uploads,
)
from tests.support.aws_shapes import (
    s3_event,
    s3_record,
    s3_test_event,
    scheduled_event,
    sqs_event,
    sqs_record,
)

STORAGE = StorageSettings(input={"name": "videos-in"}, queue_prefix="fr",
                          events_queue="fr-uploads")
KEYS = ["talk one.mp4", "a+b 100%.mp4", "vidéo été/Zoë 北京.mp4", "plain.mp4"]


def test_url_encoded_keys_are_decoded() -> None:
    event = s3_event(*(s3_record("videos-in", key, f"etag{n}") for n, key in enumerate(KEYS)))
    assert event["Records"][1]["s3"]["object"]["key"] == "a%2Bb+100%25.mp4", "as S3 sends it"
    assert kind(event) == "s3"
    found = uploads(event, "videos-in")
    assert [w.body["key"] for w in found] == KEYS
    assert {w.stage for w in found} == {START}
    assert found[0].body == {"key": "talk one.mp4", "etag": "etag0", "size": 1024}


def test_test_events_and_other_buckets_are_skipped_not_failed() -> None:
    assert kind(s3_test_event("videos-in")) == "s3"
    assert uploads(s3_test_event("videos-in"), "videos-in") == []
    other = s3_event(s3_record("someone-else", "x.mp4", "e1"),
                     s3_record("videos-in", "y.mp4", "e2"),
                     s3_record("videos-in", "z.mp4", "e3", event="ObjectRemoved:Delete"))
    assert [w.body["key"] for w in uploads(other, "videos-in")] == ["y.mp4"]


def test_sqs_records_name_their_stage_by_queue() -> None:
    deploy = DeploySettings()
    notification = json.dumps(s3_event(s3_record("videos-in", "a b.mp4", "e1")))
    assert record_work(notification, "arn:aws:sqs:us-east-1:1:fr-uploads", 3, STORAGE,
                       deploy) == [Work(START, {"key": "a b.mp4", "etag": "e1", "size": 1024}, 3)]
    body = json.dumps({"key": "a.mp4", "etag": "e", "windows": 1})
    assert record_work(body, "arn:aws:sqs:us-east-1:1:fr-recognize", 2, STORAGE, deploy) == [
        Work("recognize", {"key": "a.mp4", "etag": "e", "windows": 1}, 2)]
    assert queue_stage("arn:aws:sqs:us-east-1:1:fr-recognise", STORAGE) == "recognize"
    assert record_work(json.dumps(s3_test_event("videos-in")),
                       "arn:aws:sqs:us-east-1:1:fr-uploads", 1, STORAGE, deploy) == []
    for text, arn in (("not json", "fr-split"), ("[1]", "fr-split"), ("{}", "fr-split"),
                      (body, "fr-transcode"), (body, "other-split")):
        with pytest.raises(BadEventError):
            record_work(text, f"arn:aws:sqs:us-east-1:1:{arn}", 1, STORAGE, deploy)


def test_other_event_kinds() -> None:
    assert kind(scheduled_event()) == "schedule"
    payload = chain_payload("analyze", {"key": "k", "etag": "e", "window": 0}, 2)
    assert kind(payload) == "chain"
    task = {"facereel": "task/1", "task": "memory-index"}
    assert kind(task) == "task" and task_name(task) == "memory-index"
    with pytest.raises(BadEventError):
        task_name({"facereel": "task/1", "task": "rm -rf"})
    assert chain_work(payload) == Work("analyze", {"key": "k", "etag": "e", "window": 0}, 2)
    for bad in ({"facereel": "chain/1", "stage": "analyze"},
                {"facereel": "chain/1", "stage": "nope", "body": {}, "attempt": 1}):
        with pytest.raises(BadEventError):
            chain_work(bad)
    assert kind({"hello": 1}) == kind([]) == "unknown"


@dataclass
class Context:
    function_name: str = "facereel-publish"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:facereel-publish"
    aws_request_id: str = "req-1"


def test_the_handler_answers_a_partial_batch_response(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEREEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FACEREEL_QUEUE_PREFIX", "fr")
    monkeypatch.setattr(aws_lambda, "_HOST", None)
    result = error_result("bad clip.mp4", "not_media", "not a video").to_dict()
    good = json.dumps({"key": "bad clip.mp4", "etag": "e1", "result": result})
    event = sqs_event(sqs_record("fr-publish", good, "m-good"),
                      sqs_record("fr-publish", "{not json", "m-malformed", receive_count=2),
                      sqs_record("fr-publish", json.dumps({"etag": "x"}), "m-keyless"),
                      sqs_record("fr-elsewhere", good, "m-stranger"))
    answer: dict[str, Any] = aws_lambda.handler(event, Context())
    failed = [item["itemIdentifier"] for item in answer["batchItemFailures"]]
    assert failed == ["m-malformed", "m-keyless", "m-stranger"]
    published = tmp_path / "data" / "buckets" / "output" / "bad clip.mp4.json"
    assert json.loads(published.read_text())["status"] == "error"
    only_bad = sqs_event(sqs_record("fr-publish", "{", "m-1"))
    assert aws_lambda.handler(only_bad, Context()) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]}, "a failed batch is still an answer"
