"""deploy/openfaas/stack.yml checked statically (faas-cli cannot run here): the original
deployment's function names on python3-http-debian with Python 3.11; each handler folder,
assembled into a build context the way faas-cli does it, imports and exposes `handle`; the
requirements are facereel's dependencies; every secret is one the code reads; every
environment name is a facereel setting (or the platform's own, listed below)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from pydantic import SecretStr

from facereel.config import FLAT, TOP_LEVEL, Settings
from facereel.config.sections import SECTIONS
from facereel.deploy import openfaas
from tests.support.openfaas_gateway import Context, Event

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "deploy" / "openfaas" / "stack.yml"
FUNCTIONS = {"face-recognition": "face_recognition",
             "face-recognition-http": "face_recognition_http"}
CONTAINER_HOME = "/home/app"  # the template's WORKDIR: index.py imports `function.handler`
PLATFORM_ENVIRONMENT = {  # names read by the platform, not by facereel
    "PYTHONPATH": "where Python finds the package faas-cli copied into the build context",
    "read_timeout": "of-watchdog: how long reading a request may take",
    "write_timeout": "of-watchdog: how long writing the answer may take",
    "exec_timeout": "of-watchdog: how long one invocation may run",
}


def stack() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(STACK.read_text())
    return loaded


def test_the_stack_declares_both_functions_on_the_template() -> None:
    doc = stack()
    assert str(doc["version"]) == "1.0" and doc["provider"]["name"] == "openfaas"
    assert set(doc["functions"]) == set(FUNCTIONS)
    for function in doc["functions"].values():
        assert function["lang"] == "python3-http-debian"
        assert function["build_args"]["PYTHON_VERSION"] == "3.11"
        assert function["image"].endswith(":0.1.0")


def build_context(name: str, doc: dict[str, Any], root: Path) -> Path:
    """What faas-cli hands docker: the template's folder with the handler folder overlaid in
    `function/` and the `copy` paths copied into `function/` too (paths from the stack's
    working directory, the repository root)."""
    context = root / "build" / name
    function = context / "function"
    shutil.copytree(REPO / doc["functions"][name]["handler"], function)
    for extra in doc["configuration"]["copy"]:
        shutil.copytree(REPO / extra, function / extra,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (function / "__init__.py").touch()  # the template's Dockerfile creates it
    return context


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_handler_imports_from_its_build_context(name: str, tmp_path: Path) -> None:
    doc = stack()
    context = build_context(name, doc, tmp_path)
    python_path = doc["functions"][name]["environment"]["PYTHONPATH"]
    env = {**os.environ,
           "PYTHONPATH": python_path.replace(CONTAINER_HOME, str(context))}
    probe = ("import json, facereel; from function import handler; "
             "print(json.dumps([handler.handle.__name__, facereel.__file__]))")
    ran = subprocess.run([sys.executable, "-c", probe], cwd=context, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    handle, package = json.loads(ran.stdout.splitlines()[-1])
    assert handle == FUNCTIONS[name]
    assert Path(package).is_relative_to(context / "function"), "the copied package is used"


def _requirements(path: Path) -> set[str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {str(Requirement(line)) for line in lines if line}


def test_requirements_install_facereels_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {str(Requirement(d)) for d in project["dependencies"]}
    for name, function in stack()["functions"].items():
        assert _requirements(REPO / function["handler"] / "requirements.txt") == wanted, name


def test_every_secret_is_read_by_the_code() -> None:
    for name, function in stack()["functions"].items():
        assert set(function["secrets"]) <= set(openfaas.SECRET_SETTINGS), name
        assert openfaas.API_KEYS_SECRET in function["secrets"], f"{name} requires a key"


def _field(settings: Settings, variable: str) -> Any:
    """The value a `FACEREEL_*` variable set: its flat name or section, then sub-fields."""
    first, *rest = variable.removeprefix("FACEREEL_").lower().split("__")
    assert first in FLAT or first in SECTIONS or first in TOP_LEVEL, \
        f"{variable} is no facereel setting"
    value = getattr(getattr(settings, FLAT[first]), first) if first in FLAT \
        else getattr(settings, first)
    for name in rest:
        value = getattr(value, name)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _same(setting: Any, text: str) -> bool:
    if isinstance(setting, int | float) and not isinstance(setting, bool):
        return float(text) == setting
    return str(setting) == text


def test_environment_names_are_facereel_settings(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for variable in [v for v in os.environ if v.startswith(("FACEREEL_", "AWS_", "S3_"))]:
        monkeypatch.delenv(variable)
    for name, function in stack()["functions"].items():
        environment = {str(k): str(v) for k, v in function["environment"].items()}
        ours = {k: v for k, v in environment.items() if k.startswith("FACEREEL_")}
        assert set(environment) - set(ours) <= set(PLATFORM_ENVIRONMENT), name
        for variable, value in ours.items():
            monkeypatch.setenv(variable, value)
        settings = Settings()
        for variable, value in ours.items():
            assert _same(_field(settings, variable), value), variable
        for variable in ours:
            monkeypatch.delenv(variable)


def test_secrets_supply_keys_and_credentials(tmp_path: Path) -> None:
    (tmp_path / "facereel-api-keys").write_text("first-key\nsecond-key\n")
    (tmp_path / "facereel-input-secret-key").write_text("ceph-secret\n")
    (tmp_path / "facereel-aws-access-key").write_text("AKIAEXAMPLE")
    base = Settings(data_dir=tmp_path, openfaas_secrets=tmp_path, api_keys="from-env",
                    input={"backend": "s3", "name": "videos", "access_key": "ceph-access"})
    settings = openfaas.settings_with_secrets(base)
    assert settings.http.api_key_list == ["first-key", "second-key"], "the secret wins"
    bucket = settings.storage.input
    assert (bucket.name, bucket.access_key) == ("videos", "ceph-access"), "others are kept"
    assert bucket.secret_key is not None and bucket.secret_key.get_secret_value() == \
        "ceph-secret"
    assert settings.storage.aws_access_key == "AKIAEXAMPLE"
    without = openfaas.settings_with_secrets(base.with_overrides(
        openfaas_secrets=tmp_path / "none"))
    assert without.http.api_key_list == ["from-env"]


def test_a_misconfigured_function_answers_500_and_says_why_only_in_its_log(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEREEL_WORKERS", "-3")
    openfaas._from_environment.cache_clear()
    try:
        answer = openfaas.face_recognition(Event(b"{}", {}), Context())
    finally:
        openfaas._from_environment.cache_clear()
    assert answer["statusCode"] == 500
    assert answer["body"]["error"]["code"] == "config_error"
    assert "WORKERS" not in json.dumps(answer) and "FACEREEL_WORKERS" in caplog.text
