"""deploy/ray/ checked without a cloud: the cluster launcher's YAML against the schema Ray
ships (and broken copies refused), the KubeRay RayJob's shape, image and entrypoint (its
options parse as `facereel recognize` parses them), and the Dockerfile's `ray` target."""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray.autoscaler
import typer
import yaml

from facereel.cli import app
from facereel.config import Settings
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy" / "ray"
DOCKERFILE = REPO_ROOT / "deploy" / "aws" / "Dockerfile"


def _schema() -> dict[str, Any]:
    path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    return dict(json.loads(path.read_text()))


def _launcher() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "cluster-aws.yaml").read_text()))


def test_the_launcher_config_is_valid_for_ray_and_broken_copies_are_not() -> None:
    schema, config = _schema(), _launcher()
    jsonschema.validate(config, schema)
    assert config["provider"]["type"] == "aws"
    assert config["head_node_type"] in config["available_node_types"]
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"] == {"CPU": 0}, "the head drives; actors go to workers"
    assert config["docker"]["image"].endswith("/facereel-ray:latest")
    for breaking in ({"max_workers": "many"}, {"provider": {"region": "us-east-1"}},
                     {"docker": {"image": "x", "gpus": True}}):
        broken = copy.deepcopy(config) | breaking
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def _rayjob() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "rayjob.yaml").read_text()))


def _containers(job: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = job["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in
                                                     cluster["workerGroupSpecs"]]
    return [c for pod in pods for c in pod["spec"]["containers"]]


def test_the_rayjob_runs_the_ray_image_and_a_recognize_that_parses() -> None:
    job = _rayjob()
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    image = re.search(r"--target ray -t (\S+)", DOCKERFILE.read_text())
    assert image is not None, "the Dockerfile says how its ray target is tagged"
    assert {c["image"] for c in _containers(job)} == {f"{image.group(1)}:latest"}
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:2] == ["facereel", "recognize"]
    command = typer.main.get_command(app)
    context = command.make_context("facereel", argv[1:2], resilient_parsing=True)
    recognize = command.get_command(context, "recognize")  # type: ignore[attr-defined]
    parsed = recognize.make_context("recognize", argv[2:]).params
    assert (parsed["engine"], parsed["address"]) == ("ray", "auto")
    assert all(source.startswith("s3://") for source in parsed["sources"])
    assert parsed["out_to"].startswith("s3://"), "a cluster writes to a bucket"
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]
    assert head["num-cpus"] == "0"


def test_the_rayjob_environment_is_facereel_settings(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    names = set()
    for container in _containers(_rayjob()):
        for variable in container["env"]:
            names.add(variable["name"])
            monkeypatch.setenv(variable["name"], variable["value"])
    settings = Settings()
    assert all(name.startswith("FACEREEL_") for name in names)
    assert settings.storage.input.backend == settings.storage.output.backend == "s3"
    assert settings.storage.gallery_location == "stage1", "every node reads one gallery"


def test_the_dockerfile_ray_target_adds_ray_default_to_the_runtime() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+) AS (\S+)", text, re.MULTILINE)
    assert ("runtime", "ray") in stages and stages[-1][1] == "lambda", \
        "ray builds on the runtime; lambda stays the default (last) target"
    ray_stage = text.split("FROM runtime AS ray", 1)[1].split("FROM ", 1)[0]
    pinned = re.search(r'"ray\[default\]>=([\d.]+)', ray_stage)
    project = (REPO_ROOT / "pyproject.toml").read_text()
    floor = re.search(r'"ray>=([\d.]+)"', project)
    assert pinned is not None and floor is not None and pinned.group(1) == floor.group(1)
    assert "wget" in ray_stage, "KubeRay's probes need it"
