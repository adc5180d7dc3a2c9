"""The README is the user's truth: every `facereel` command line in it parses (its commands and
options exist), every `FACEREEL_*` variable is read, every route it names exists and every
route the API has is named, every JSON body it shows is accepted by its route, and the result
document it shows is what `VideoResult` reads and writes. The section marked as needing a
real cloud account is left out of the route check (its files are checked statically by
tests/unit/test_aws_template.py and test_openfaas_stack.py)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from facereel.cli import app as cli_app
from facereel.config import ALIASES, FLAT, TOP_LEVEL
from facereel.config.sections import SECTIONS, BucketSettings
from facereel.core.results import VideoResult
from tests.conftest import REPO_ROOT
from tests.support.live_api import AUTH, Live

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
CLOUD = re.compile(r"<!-- needs-a-cloud-account -->.*?<!-- /needs-a-cloud-account -->", re.S)
METHODS = "GET|POST|PUT|PATCH|DELETE"
ROUTE = re.compile(rf"\b((?:{METHODS})(?:/(?:{METHODS}))*) (/[^\s`?,)|]*)")


def _code_blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(\w*)\n(.*?)```", text, re.S)


def _command_lines() -> list[str]:
    """`facereel ...` as written in code blocks and inline code, comments and options'
    placeholders' brackets removed."""
    found = []
    texts = [body for _, body in _code_blocks(README)]
    texts += re.findall(r"`(facereel [^`]+)`", README)
    for text in texts:
        for line in text.replace("\\\n", " ").splitlines():
            for part in re.split(r"\s(?:\||&&|;)\s", line):
                match = re.search(r"(?:^|\s)facereel ((?:[^#])*)", part)
                if match and not part.lstrip().startswith(("import", "from")):
                    found.append(match.group(1).replace("[", " ").replace("]", " "))
    return found


def _command(path: list[str]) -> tuple[Any, list[str]]:
    node: Any = typer.main.get_command(cli_app)
    while path and hasattr(node, "commands") and path[0] in node.commands:
        node = node.commands[path.pop(0)]
    return node, path


def test_every_facereel_command_line_parses() -> None:
    lines = _command_lines()
    assert len(lines) >= 25, lines
    for line in lines:
        words = shlex.split(line.replace("...", ""))
        command, rest = _command(words)
        runs = not hasattr(command, "commands") or command.invoke_without_command
        assert runs, f"`facereel {line}`: not a command"
        options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        for word in rest:
            if word.startswith("-") and word != "-":
                name = word.split("=", 1)[0]
                assert name in options, f"`facereel {line}`: no option {name}"


def _settings_variables() -> set[str]:
    names = {*FLAT, *ALIASES, *TOP_LEVEL}
    names |= {f"{section}__{field}" for section, model in SECTIONS.items()
              for field in model.model_fields}
    names |= {f"{bucket}__{field}" for bucket in ("input", "stage1", "output")
              for field in BucketSettings.model_fields}
    return {f"FACEREEL_{name.upper()}" for name in names}


def test_every_variable_is_read() -> None:
    known = _settings_variables()
    sources = "\n".join(p.read_text(errors="replace") for folder in ("src", "tests", "deploy")
                        for p in (REPO_ROOT / folder).rglob("*")
                        if p.suffix in (".py", ".yaml", ".yml", ".sh") and p.is_file()
                        and p.name != "test_readme.py")
    mentioned = set(re.findall(r"FACEREEL_[A-Z0-9_]*[A-Z0-9]", README))
    assert len(mentioned) >= 40
    for variable in sorted(mentioned):
        assert variable in known or variable in sources, f"{variable} is read by nothing"


def _normal(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/") or "/")


def _readme_routes() -> set[tuple[str, str]]:
    routes = set()
    for methods, path in ROUTE.findall(CLOUD.sub("", README)):
        for method in methods.split("/"):
            routes.add((method, _normal(path)))
    return routes


def test_every_route_is_documented_and_exists(live: Live) -> None:
    served = {(method, _normal(path)) for path, operations in
              live.app.openapi()["paths"].items() for method in map(str.upper, operations)}
    served |= {("GET", "/"), ("POST", "/")}
    documented = _readme_routes()
    assert documented - served == set(), "named in the README but not served"
    assert served - documented == set(), "served but not in the README"


def _bodies() -> list[tuple[str, str, dict[str, Any]]]:
    bodies = []
    for _, block in _code_blocks(README):
        for line in block.splitlines():
            match = re.match(rf"({METHODS}) (/\S*)\s+(\{{.*\}})\s*$", line)
            if match:
                bodies.append((match[1], match[2], json.loads(match[3])))
    return bodies


def test_every_json_body_shown_is_accepted(live: Live) -> None:
    bodies = _bodies()
    assert len(bodies) >= 6
    try:
        for method, path, body in bodies:
            response = live.client.request(method, path.replace("{name}", "Ada Lovelace"),
                                           json=body, headers=AUTH)
            assert response.status_code != 422 and response.status_code < 500, \
                (method, path, response.text)
    finally:
        live.client.delete("/v1/people/Ada Lovelace", headers=AUTH)


@pytest.mark.parametrize("marker", ['"schema_version": 2'])
def test_the_result_document_shown_is_the_one_written(marker: str) -> None:
    (example,) = [body for kind, body in _code_blocks(README)
                  if kind == "json" and marker in body]
    doc = json.loads(example)
    assert VideoResult.from_dict(doc).to_dict() == doc


def test_the_cloud_section_is_marked() -> None:
    assert CLOUD.search(README), "mark what needs a real cloud account"
    assert Path(REPO_ROOT / "deploy" / "aws" / "template.yaml").exists()
