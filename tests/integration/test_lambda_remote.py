"""The Lambda handler end to end, as Lambda runs it: each function of the template is the real
`awslambdaric` client in its own process, driven by a Runtime API stub, against S3, SQS and
DynamoDB on moto (and S3 on SeaweedFS). Uploads become S3 -> SQS notifications, which are
fed to the functions the way an event source mapping would (keys URL-encoded as AWS encodes
them), until the output bucket holds every result. Every AWS call each function's code makes
is recorded and checked against that function's policy in deploy/aws/template.yaml."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from facereel.deploy.aws_events import chain_payload
from facereel.pipeline.definition import STAGE_NAMES
from facereel.ports.objectstore.s3 import make_s3_client
from facereel.ports.queue.sqs import make_sqs_client
from tests.conftest import CLIP_PEOPLE
from tests.support import cfn
from tests.support.aws_shapes import (
    as_aws_sends,
    s3_event,
    s3_record,
    scheduled_event,
    sqs_event,
    sqs_record,
)
from tests.support.esm import EventSourceMapping, drain
from tests.support.invoke_stub import InvokeApiStub
from tests.support.lambda_runtime import LambdaFunction
from tests.support.pipeline import Pipeline, s3_buckets
from tests.support.servers import MotoServer, SeaweedServer

INGEST = "ingest"  # the function without a stage: uploads start the pipeline
POLLER = "poller"  # hybrid: the scheduled function polling an input bucket that cannot notify
INDEXER = "memory-index"  # the scheduled writer of the face index snapshot
KEYS = {"test_0": "test_0 été.mp4", "test_1": "test_1+x 100%.mp4"}  # others: "<clip> clip.mp4"


def aws_env(moto: MotoServer, suffix: str) -> dict[str, str]:
    """A deployment's settings: queues and tables on moto, named with `suffix`."""
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1", "FACEREEL_QUEUE_BACKEND": "sqs",
            "FACEREEL_SQS_ENDPOINT": moto.endpoint, "FACEREEL_QUEUE_PREFIX": f"fr-{suffix}",
            "FACEREEL_FUNCTION_PREFIX": f"fr-{suffix}",
            "FACEREEL_METADATA_BACKEND": "dynamodb", "FACEREEL_DYNAMODB_ENDPOINT": moto.endpoint,
            "TABLE_NAME": f"people-{suffix}", "FACEREEL_VIDEOS_TABLE": f"videos-{suffix}",
            "FACEREEL_WINDOWS_TABLE": f"windows-{suffix}",
            "FACEREEL_PERSON_VIDEOS_TABLE": f"person-videos-{suffix}",
            "FACEREEL_FACES_TABLE": f"faces-{suffix}", "FACEREEL_VISIBILITY": "60"}


@contextmanager
def deployed(tmp_path: Path, env: dict[str, str], roles: tuple[str, ...],
             calls: Path) -> Iterator[dict[str, LambdaFunction]]:
    """The functions `roles` (a stage, or INGEST), each an awslambdaric process."""
    with ExitStack() as stack:
        functions = {}
        for role in roles:
            stage = {"FACEREEL_STAGE": role} if role in STAGE_NAMES else {}
            name = f"{env['FACEREEL_FUNCTION_PREFIX']}-{role}"
            function = LambdaFunction(tmp_path / "functions", name,
                                      {**env, **stage, "FACEREEL_DATA_DIR": str(tmp_path / "rw")},
                                      calls)
            functions[role] = stack.enter_context(function)
        yield functions


def upload(s3: Any, bucket: str, clips: dict[str, Path], names: list[str]) -> dict[str, str]:
    """Clip name -> its key in the input bucket."""
    keys = {name: KEYS.get(name, f"{name} clip.mp4") for name in names}
    for name, key in keys.items():
        s3.upload_file(str(clips[name]), bucket, key)
    return keys


def results(s3: Any, bucket: str) -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents") or []
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in listing}


def check_right(outputs: dict[str, bytes], keys: dict[str, str]) -> None:
    for clip, key in keys.items():
        stem = key.rsplit(".", 1)[0]
        assert {f"{key}.json", f"{stem}.txt", f"{stem}.csv"} <= set(outputs), stem
        doc = json.loads(outputs[f"{key}.json"])
        assert doc["video"] == key and doc["people"][0]["person"] == CLIP_PEOPLE[clip], doc
    assert len(outputs) == 3 * len(keys)


def read_calls(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def template_parameters(suffix: str, input_endpoint: str = "") -> dict[str, str]:
    """The template's parameters that name what these tests deployed."""
    return {"Prefix": f"fr-{suffix}", "InputBucketName": f"input-{suffix}",
            "Stage1BucketName": f"stage-1-{suffix}", "OutputBucketName": f"output-{suffix}",
            "EventsQueueName": f"fr-{suffix}-uploads", "PeopleTableName": f"people-{suffix}",
            "VideosTableName": f"videos-{suffix}", "WindowsTableName": f"windows-{suffix}",
            "PersonVideosTableName": f"person-videos-{suffix}",
            "FacesTableName": f"faces-{suffix}", "InputEndpoint": input_endpoint}


def check_least_privilege(calls: list[dict[str, str]], parameters: dict[str, str]) -> None:
    """Every AWS call each function made is allowed by that function's own policy in the
    template (a bucket on another endpoint is not AWS's to allow)."""
    resolved = cfn.Resolved(cfn.load(), parameters)
    elsewhere = {parameters["InputBucketName"]} if parameters["InputEndpoint"] else set()
    checked = 0
    for call in calls:
        if call.get("Bucket") in elsewhere:
            continue
        action, resource = cfn.action_and_resource(call)
        statements = resolved.statements(call["function"])
        assert cfn.allows(statements, action, resource), f"not allowed by the policy: {call}"
        checked += 1
    assert checked > 0
    publish = resolved.statements(f"{parameters['Prefix']}-publish")
    assert not cfn.allows(publish, "s3:PutObject", f"arn:aws:s3:::{parameters['InputBucketName']}"
                          "/x.mp4"), "the check can fail"


@pytest.mark.slow
def test_the_functions_on_moto(moto: MotoServer, cse546: Path, clips: dict[str, Path],
                               tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    env = {**aws_env(moto, suffix), **s3_buckets(moto.endpoint, suffix),
           "FACEREEL_EVENTS_QUEUE": f"fr-{suffix}-uploads"}
    Pipeline(tmp_path / "admin", env).prepare(cse546)  # provision, gallery, people
    s3 = make_s3_client(moto.endpoint, "us-east-1", "testing", "testing")
    sqs = make_sqs_client(moto.endpoint, "us-east-1", "testing", "testing")
    calls = tmp_path / "calls.jsonl"
    with deployed(tmp_path, env, (INGEST, *STAGE_NAMES, INDEXER), calls) as functions:
        keys = upload(s3, f"input-{suffix}", clips, sorted(CLIP_PEOPLE))
        uploaded = set(keys.values())
        mappings = [EventSourceMapping(sqs, f"fr-{suffix}-uploads", functions[INGEST], 10,
                                       lambda body: as_aws_sends(body, uploaded))]
        mappings += [EventSourceMapping(sqs, f"fr-{suffix}-{stage}", functions[stage])
                     for stage in STAGE_NAMES]
        drain(mappings, lambda: len(results(s3, f"output-{suffix}")) >= 3 * len(keys))
        outputs = results(s3, f"output-{suffix}")
        check_right(outputs, keys)
        assert all(failed == [] for m in mappings for failed in m.failures)
        ingest, publish = mappings[0], mappings[1 + STAGE_NAMES.index("publish")]
        assert {r["body"] for r in ingest.delivered} and all(
            "+" in r["body"] or "%" in r["body"] for r in ingest.delivered
            if "test_0" in r["body"] or "test_1" in r["body"]), "keys arrived URL-encoded"

        # a poisoned record comes back alone; a redelivered one writes no duplicate
        stage1_before = results(s3, f"stage-1-{suffix}")
        again = dict(publish.delivered[0], messageId="again")
        again["attributes"] = dict(again["attributes"], ApproximateReceiveCount="2")
        poison = sqs_record(f"fr-{suffix}-publish", "{poison", "poison")
        answer = functions["publish"].invoke(sqs_event(poison, again))
        assert answer.ok and answer.payload == {"batchItemFailures": [{"itemIdentifier":
                                                                        "poison"}]}
        upload_again = dict(ingest.delivered[0], messageId="upload-again")
        assert functions[INGEST].invoke(sqs_event(upload_again)).payload == {
            "batchItemFailures": []}
        assert sqs.receive_message(QueueUrl=mappings[1].url).get("Messages") is None, \
            "a repeated S3 event starts nothing"
        assert results(s3, f"output-{suffix}") == outputs
        assert set(results(s3, f"stage-1-{suffix}")) == set(stage1_before)
        report = functions[INDEXER].invoke({"facereel": "task/1", "task": INDEXER}).payload
        assert report["rebuilt"] and report["videos"] == len(keys) and report["vectors"] > 0, \
            "every video's faces were remembered, and indexed"
    assert not (tmp_path / "rw").exists(), "functions write nothing but /tmp"
    recorded = read_calls(calls)
    assert {c["function"] for c in recorded} == {
        f"fr-{suffix}-{role}" for role in (INGEST, *STAGE_NAMES, INDEXER) if role != "analyze"}
    check_least_privilege(recorded, template_parameters(suffix))


@pytest.mark.slow
def test_a_polled_bucket_on_seaweedfs(moto: MotoServer, seaweed: SeaweedServer, cse546: Path,
                                      clips: dict[str, Path], tmp_path: Path) -> None:
    """Hybrid: the buckets on an S3-compatible server that cannot notify AWS; a scheduled
    function polls the input bucket, remembering what it started in a cursor object."""
    suffix = uuid.uuid4().hex[:8]
    env = {**aws_env(moto, suffix), **s3_buckets(seaweed.endpoint, suffix)}
    for bucket in ("INPUT", "STAGE1", "OUTPUT"):
        env[f"FACEREEL_{bucket}__ACCESS_KEY"] = seaweed.access_key
        env[f"FACEREEL_{bucket}__SECRET_KEY"] = seaweed.secret_key
    Pipeline(tmp_path / "admin", env).prepare(cse546)
    s3 = make_s3_client(seaweed.endpoint, "us-east-1", seaweed.access_key, seaweed.secret_key)
    sqs = make_sqs_client(moto.endpoint, "us-east-1", "testing", "testing")
    calls = tmp_path / "calls.jsonl"
    roles = ("split", "recognize", "publish")
    with deployed(tmp_path, env, (POLLER, *roles), calls) as functions:
        keys = upload(s3, f"input-{suffix}", clips, ["test_1", "test_5", "test_6"])
        assert functions[POLLER].invoke(scheduled_event()).payload == {"started": 3}
        mappings = [EventSourceMapping(sqs, f"fr-{suffix}-{stage}", functions[stage])
                    for stage in roles]
        drain(mappings, lambda: len(results(s3, f"output-{suffix}")) >= 3 * len(keys))
        check_right(results(s3, f"output-{suffix}"), keys)
        assert functions[POLLER].invoke(scheduled_event()).payload == {"started": 0}, \
            "the cursor remembers what was started"
    cursor = json.loads(results(s3, f"stage-1-{suffix}")[f"ingest/cursor-input-{suffix}.json"])
    assert sorted(cursor) == sorted(keys.values())
    check_least_privilege(read_calls(calls), template_parameters(suffix, seaweed.endpoint))


@pytest.mark.slow
def test_the_original_chain(moto: MotoServer, cse546: Path, clips: dict[str, Path],
                            tmp_path: Path) -> None:
    """Chain mode: an S3 event invokes the ingest function, and each stage invokes the next
    function asynchronously (InvocationType=Event) instead of using a queue. A failing run
    invokes itself again with the next attempt in the payload; the last failure lands in the
    on-failure destination (the stage's dead-letter queue)."""
    suffix = uuid.uuid4().hex[:8]
    sqs = make_sqs_client(moto.endpoint, "us-east-1", "testing", "testing")
    s3 = make_s3_client(moto.endpoint, "us-east-1", "testing", "testing")
    with InvokeApiStub({}, sqs) as lambda_api:
        env = {**aws_env(moto, suffix), **s3_buckets(moto.endpoint, suffix),
               "FACEREEL_INVOKE_MODE": "chain", "FACEREEL_LAMBDA_ENDPOINT": lambda_api.endpoint,
               "FACEREEL_MAX_ATTEMPTS": "2"}
        Pipeline(tmp_path / "admin", env).prepare(cse546)
        calls = tmp_path / "calls.jsonl"
        with deployed(tmp_path, env, (INGEST, "split", "recognize", "publish", "remember"),
                      calls) as functions:
            lambda_api.functions.update({f.function_name: f for f in functions.values()})
            keys = upload(s3, f"input-{suffix}", clips, ["test_2", "test_8"])
            records = [s3_record(f"input-{suffix}", key, s3.head_object(
                Bucket=f"input-{suffix}", Key=key)["ETag"].strip('"')) for key in keys.values()]
            assert functions[INGEST].invoke(s3_event(*records)).ok
            lambda_api.wait_idle()
            check_right(results(s3, f"output-{suffix}"), keys)
            order = [(i.function.rsplit("-", 1)[-1], i.payload["body"]["key"])
                     for i in lambda_api.invocations]
            for key in keys.values():
                assert [stage for stage, k in order if k == key] == [
                    "split", "recognize", "publish", "remember"]
            assert {i.invocation_type for i in lambda_api.invocations} == {"Event"}

            ghost = {"key": "ghost.mp4", "etag": "e1", "result_key": "nowhere/result.json"}
            payload = chain_payload("publish", ghost, 1)
            lambda_api.invocations.clear()
            assert functions["publish"].invoke(payload).ok, "attempt 1 hands on attempt 2"
            lambda_api.wait_idle()
        assert [(i.function, i.payload["attempt"]) for i in lambda_api.invocations] == [
            (f"fr-{suffix}-publish", 2)]
        dead_url = sqs.get_queue_url(QueueName=f"fr-{suffix}-publish-dead")["QueueUrl"]
        (dead,) = sqs.receive_message(QueueUrl=dead_url, WaitTimeSeconds=1)["Messages"]
        record = json.loads(dead["Body"])
        assert record["requestPayload"] == chain_payload("publish", ghost, 2)
        assert record["responseContext"]["functionError"] == "Unhandled"
    check_least_privilege(read_calls(calls), {**template_parameters(suffix),
                                              "InvokeMode": "chain"})
