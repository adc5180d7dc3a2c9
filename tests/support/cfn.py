"""Read deploy/aws/template.yaml the way CloudFormation would, offline: translate it with
aws-sam-translator, lint the result with cfn-lint, and resolve the intrinsic functions the
template uses (Ref, Fn::Sub, Fn::GetAtt ...Arn, Fn::If with its conditions, AWS::NoValue) for
given parameter values, so tests can compare its resources with `facereel provision`'s plan
and check recorded AWS calls against each function's policy."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import cfnlint.api
from boto3.session import Session
from cfnlint.decode import cfn_yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from tests.conftest import REPO_ROOT

TEMPLATE = REPO_ROOT / "deploy" / "aws" / "template.yaml"
REGION, ACCOUNT = "us-east-1", "123456789012"
PSEUDO = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
          "AWS::StackName": "facereel", "AWS::URLSuffix": "amazonaws.com"}
NO_VALUE = object()


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain JSON data (YAML tags become Fn:: objects)."""
    return dict(json.loads(json.dumps(cfn_yaml.loads(path.read_text()), default=str)))


def translate(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation SAM would deploy (offline: a session only names the region; no
    managed policy names are looked up, since the template uses none)."""
    translator = Translator(None, Parser(), boto_session=Session(region_name=REGION))
    return dict(translator.translate(json.loads(json.dumps(template)), {},
                                     get_managed_policy_map=dict))


def lint(translated: dict[str, Any]) -> list[str]:
    return [str(match) for match in cfnlint.api.lint(json.dumps(translated), regions=[REGION])]


class Resolved:
    """The template's resources with intrinsic functions evaluated for `parameters`
    (defaults for the others); resources whose condition is false are left out."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str] | None = None):
        self.template = template
        self.params = {name: str(spec.get("Default", ""))
                       for name, spec in template.get("Parameters", {}).items()}
        self.params.update(parameters or {})
        self.conditions: dict[str, bool] = {}
        for name in template.get("Conditions", {}):
            self.condition(name)
        self.resources = {name: resource for name, resource in template["Resources"].items()
                          if self.conditions.get(resource.get("Condition", ""), True)}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self.conditions[name]

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: self.value(r.get("Properties", {})) for name, r in self.resources.items()
                if r["Type"] == kind}

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            function = _FUNCTIONS.get(key)
            if function is not None:
                return function(self, arg)
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        resource = self.template["Resources"][name]
        props = self.value(resource.get("Properties", {}))
        if resource["Type"] == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{props['QueueName']}"
        return props.get("BucketName") or props.get("TableName") or props.get("FunctionName") \
            or name

    def arn(self, name: str) -> str:
        resource = self.template["Resources"][name]
        props = self.value(resource.get("Properties", {}))
        kind = resource["Type"]
        if kind == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{props['QueueName']}"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{props['TableName']}"
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{props['BucketName']}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT}:role/{name}"
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{props['FunctionName']}"

    def sub(self, arg: Any) -> str:
        text, names = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in names:
                return str(names[name])
            if name.endswith(".Arn"):
                return self.arn(name[:-4])
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def statements(self, function_name: str) -> list[dict[str, Any]]:
        """The policy statements of the role of the function named `function_name`."""
        for props in self.of_type("AWS::Serverless::Function").values():
            if props.get("FunctionName") == function_name:
                role_arn = str(props["Role"])
                role = self.of_type("AWS::IAM::Role")[role_arn.rsplit("/", 1)[-1]]
                return [s for policy in role["Policies"]
                        for s in policy["PolicyDocument"]["Statement"]]
        raise KeyError(f"no function {function_name} in the template")


def _if(resolved: Resolved, arg: list[Any]) -> Any:
    return resolved.value(arg[1] if resolved.condition(arg[0]) else arg[2])


def _getatt(resolved: Resolved, arg: Any) -> Any:
    name, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
    assert attribute == "Arn", f"only Fn::GetAtt ...Arn is resolved here, not {attribute}"
    return resolved.arn(name)


_FUNCTIONS: dict[str, Any] = {
    "Ref": lambda r, arg: r.ref(arg),
    "Fn::Sub": lambda r, arg: r.sub(arg),
    "Fn::GetAtt": _getatt,
    "Fn::If": _if,
    "Fn::Equals": lambda r, arg: r.value(arg[0]) == r.value(arg[1]),
    "Fn::Not": lambda r, arg: not r.value(arg[0]),
    "Fn::And": lambda r, arg: all(r.value(arg)),
    "Fn::Or": lambda r, arg: any(r.value(arg)),
    "Condition": lambda r, arg: r.condition(arg),
    "Fn::Join": lambda r, arg: str(arg[0]).join(str(v) for v in r.value(arg[1])),
}


# ---- AWS calls against policy statements -------------------------------------------------
_ACTIONS = {("s3", "HeadObject"): "s3:GetObject", ("s3", "ListObjectsV2"): "s3:ListBucket",
            ("lambda", "Invoke"): "lambda:InvokeFunction"}


def action_and_resource(call: dict[str, str]) -> tuple[str, str]:
    """The IAM action a recorded call needs, and the ARN of what it touches."""
    service, operation = call["service"], call["operation"]
    action = _ACTIONS.get((service, operation), f"{service}:{operation}")
    if service == "s3":
        bucket = f"arn:aws:s3:::{call['Bucket']}"
        return action, bucket if "Key" not in call else f"{bucket}/{call['Key']}"
    if service == "sqs":
        name = call.get("QueueName") or call["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
        return action, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    if service == "dynamodb":
        return action, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{call['TableName']}"
    if service == "lambda":
        return action, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{call['FunctionName']}"
    raise AssertionError(f"a call to {service}, which no policy here covers: {call}")


def _listed(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    return any(s["Effect"] == "Allow"
               and any(fnmatch.fnmatchcase(action, a) for a in _listed(s["Action"]))
               and any(fnmatch.fnmatchcase(resource, r) for r in _listed(s["Resource"]))
               for s in statements)
