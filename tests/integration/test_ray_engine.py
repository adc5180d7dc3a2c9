"""The Ray engine end to end, on loopback: the same result documents as the local engine from
a SeaweedFS bucket to a bucket; a worker node lost mid-run costs retries, not results; a run
joining a cluster refuses this machine's folders; a missing extra is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facereel.app.sources import open_sources, parse_location
from facereel.config import Settings
from facereel.pipeline.wiring import object_store
from facereel.ports.objectstore import ObjectStore
from facereel.ports.objectstore.s3 import make_s3_client
from tests.integration.test_pipeline_local import results_by_stem
from tests.support import provisioned
from tests.support.media_factory import timeline
from tests.support.pipeline import Pipeline
from tests.support.ray_cluster import kill_raylet, loopback_cluster, ray_env, short_tmp
from tests.support.servers import SeaweedServer
from tests.support.truth import CLIP_PEOPLE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
TIMING = ("elapsed_ms",)  # the only field allowed to differ between two runs


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    with short_tmp() as folder:
        yield folder


def _bucket_env(seaweed: SeaweedServer) -> dict[str, str]:
    env: dict[str, str] = {}
    for which in ("INPUT", "OUTPUT"):
        env |= {f"FACEREEL_{which}__BACKEND": "s3", f"FACEREEL_{which}__ENDPOINT": seaweed.endpoint,
                f"FACEREEL_{which}__ACCESS_KEY": seaweed.access_key,
                f"FACEREEL_{which}__SECRET_KEY": seaweed.secret_key}
    return env


def _store(seaweed: SeaweedServer, bucket: str) -> ObjectStore:
    client = make_s3_client(seaweed.endpoint, "us-east-1", seaweed.access_key,
                            seaweed.secret_key)
    provisioned.s3_bucket(client, bucket)
    settings = Settings(input={"name": bucket, "backend": "s3", "endpoint": seaweed.endpoint,
                               "access_key": seaweed.access_key,
                               "secret_key": seaweed.secret_key})
    return object_store(settings.storage, settings.storage.input)


def _documents(store: ObjectStore, prefix: str) -> dict[str, dict[str, Any]]:
    docs = {}
    for info in store.list(prefix):
        if info.key.endswith(".json"):
            doc = json.loads(store.get_bytes(info.key))
            for name in TIMING:
                doc["stats"].pop(name, None)
            docs[info.key.removeprefix(prefix)] = doc
    return docs


def _facereel(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "facereel", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600, check=False)


def test_both_engines_answer_alike_from_bucket_to_bucket(
        seaweed: SeaweedServer, clips: dict[str, Path], settings: Settings, tmp_path: Path,
        ray_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs, outputs = _store(seaweed, "ray-in"), _store(seaweed, "ray-out")
    for name, path in clips.items():
        inputs.put_file(f"videos/{name}.mp4", path)
    long = tmp_path / "long.mp4"  # 4 windows of 3 s, shared by the actors
    timeline(long, [(None, 2.0), (clips["test_8"], 1.5), (None, 2.0), (clips["test_7"], 1.5),
                    (None, 4.0), (clips["test_0"], 1.5), (None, 1.0)])
    inputs.put_file("videos/long/long.mp4", long)
    inputs.put_bytes("videos/notes.txt", b"not a video")  # not media: not an input
    env = {**_bucket_env(seaweed), **ray_env(monkeypatch, ray_tmp),
           "FACEREEL_DATA_DIR": str(settings.data_dir), "FACEREEL_WINDOW": "3",
           "FACEREEL_WORKERS": "2"}
    local = _facereel(["recognize", "s3://ray-in/videos/", "--out", "s3://ray-out/local/"],
                      env)
    assert local.returncode == 0, local.stderr
    on_ray = _facereel(["recognize", "s3://ray-in/videos/", "--out", "s3://ray-out/ray",
                        "--engine", "ray"], env)
    assert on_ray.returncode == 0, on_ray.stderr
    assert "9 of 9 done" in on_ray.stderr and "0 retried" in on_ray.stderr
    local_docs, ray_docs = _documents(outputs, "local/"), _documents(outputs, "ray/")
    assert sorted(ray_docs) == sorted([f"{n}.mp4.json" for n in clips] + ["long/long.mp4.json"])
    assert ray_docs == local_docs, "the same documents, timing aside"
    for name, person in CLIP_PEOPLE.items():
        assert [p["person"] for p in ray_docs[f"{name}.mp4.json"]["people"]] == [person]
        assert outputs.get_bytes(f"ray/{name}.txt").decode().strip() == person
    long_people = {p["person"] for p in ray_docs["long/long.mp4.json"]["people"]}
    assert long_people == {"president_obama", "morgan_freeman", "president_trump"}


def test_a_lost_node_costs_retries_not_results(
        seaweed: SeaweedServer, clips: dict[str, Path], settings: Settings, ray_tmp: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from facereel.app.batchwork import judge_of
    from facereel.deploy.ray import run_batch
    from facereel.deploy.ray_work import Outcome

    inputs, outputs = _store(seaweed, "node-in"), _store(seaweed, "node-out")
    keys = {f"videos/round{r}/{name}.mp4": name for r in range(3) for name in clips}
    for key, name in keys.items():
        inputs.put_file(key, clips[name])
    ray_env(monkeypatch, ray_tmp)
    buckets = {"backend": "s3", "endpoint": seaweed.endpoint, "access_key": seaweed.access_key,
               "secret_key": seaweed.secret_key}
    with loopback_cluster(ray_tmp, head_cpus=2, worker_cpus=2) as cluster:
        run_settings = settings.with_overrides(
            input={**buckets, "name": "node-in"}, output={**buckets, "name": "node-out"},
            ray_address=cluster.address, ray_inflight=3)
        worker_node = cluster.worker.node_id[:8]
        killed: list[str] = []

        def on_result(outcome: Outcome) -> None:  # the first answer from the worker node
            if outcome.node.startswith(worker_node) and not killed:
                kill_raylet(cluster.worker)
                killed.append(outcome.item.video)

        sources = open_sources(["s3://node-in/videos/"], run_settings.storage)
        summary = run_batch(sources, parse_location("s3://node-out/results/"), run_settings,
                            judge_of(run_settings), on_result=on_result)
    print("after losing a node:", json.dumps(summary.to_dict()))
    assert killed, "the worker node answered before it was killed"
    assert summary.listed == summary.done == len(keys) and summary.lost == 0
    assert summary.retried > 0, "calls in flight on the lost node were run again"
    docs = _documents(outputs, "results/")
    assert sorted(docs) == sorted(f"{key.removeprefix('videos/')}.json" for key in keys), \
        "exactly one result per video"
    for key, name in keys.items():
        doc = docs[f"{key.removeprefix('videos/')}.json"]
        assert [p["person"] for p in doc["people"]] == [CLIP_PEOPLE[name]], key
    assert len(summary.nodes) == 2 and all(t.calls for t in summary.nodes.values())


def test_a_cluster_run_refuses_local_folders_and_a_missing_extra_is_one_line(
        clips: dict[str, Path], settings: Settings, tmp_path: Path) -> None:
    env = {"FACEREEL_DATA_DIR": str(settings.data_dir), "RAY_AUTH_MODE": "disabled"}
    folder = str(next(iter(clips.values())).parent)
    refused = _facereel(["recognize", folder, "--engine", "ray", "--address", "127.0.0.1:9"],
                        env)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "cannot reach" in refused.stderr
    out = _facereel(["recognize", "s3://b/x/", "--out", str(tmp_path), "--engine", "ray",
                     "--address", "127.0.0.1:9"], env)
    assert out.returncode == 2 and str(tmp_path) in out.stderr
    hidden = tmp_path / "no-ray"  # a `ray` package that is not there
    (hidden / "ray").mkdir(parents=True)
    (hidden / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    missing = _facereel(["recognize", folder, "--engine", "ray"],
                        {**env, "PYTHONPATH": str(hidden)})
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "error (missing_extra)" in missing.stderr
    assert "pip install 'facereel[ray]'" in missing.stderr


def test_up_on_ray_runs_the_stages_as_actors_scaled_to_the_backlog(
        cse546: Path, tmp_path: Path, ray_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`up --engine ray` on the embedded defaults: the 8 clips through the same queues, by
    stage actors that the backlog scales from 1 to 2 and back."""
    env = {**ray_env(monkeypatch, ray_tmp), "FACEREEL_ENGINE": "ray",
           "FACEREEL_RAY_ACTORS_MIN": "1", "FACEREEL_RAY_ACTORS_MAX": "2",
           "FACEREEL_RAY_BACKLOG_PER_ACTOR": "2", "FACEREEL_RAY_SCALE_IN_DELAY": "1",
           "FACEREEL_LOG_LEVEL": "INFO"}
    pipeline = Pipeline(tmp_path / "state", env=env, workers=2)
    pipeline.prepare(cse546)
    pipeline.start()
    try:
        pipeline.wait_log("facereel is up on Ray: 1..2 stage actors")
        pipeline.cli("workload", str(cse546 / "videos"))
        status = pipeline.wait_done(8, timeout_s=240)
        assert status["videos"].get("done") == 8, status
        pipeline.wait_log("autoscale scale_out")
        pipeline.wait_log("autoscale scale_in")  # an idle queue lets the second actor go
    finally:
        code = pipeline.stop()
    assert code == 0
    results = results_by_stem(pipeline.data_dir)
    assert {stem: [p["person"] for p in doc["people"]] for stem, doc in results.items()} == \
        {name: [person] for name, person in CLIP_PEOPLE.items()}
