"""template.yaml as CloudFormation would see it, offline: SAM translated (aws-sam-translator, as the
local stack does) and every intrinsic resolved against a made-up deployment, so tests can read
the roles' policies as the ARNs IAM would compare."""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"

STACK = "teststack"
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "111122223333",
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
}
_CODE_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")


class _NoManagedPolicies:
    """SAM resolves managed policy names from its bundled list; nothing is asked of IAM."""

    def load(self) -> dict[str, str]:
        return {}


@cache
def sam_template() -> dict[str, Any]:
    """template.yaml as written (SAM)."""
    template: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return template


@cache
def _translated_json() -> str:
    sam = copy.deepcopy(sam_template())
    for logical_id, resource in sam["Resources"].items():
        properties = resource.get("Properties", {})
        for key in _CODE_PROPERTIES:
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://code/{logical_id}.zip"
    # The translator asks boto3 for a region even when it is given one.
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": PSEUDO["AWS::Region"]}):
        translated = transform(sam, {"AWS::Region": PSEUDO["AWS::Region"]}, _NoManagedPolicies())
    return json.dumps(translated)


def translated() -> dict[str, Any]:
    """template.yaml after the SAM transform (plain CloudFormation); a fresh copy each call."""
    result: dict[str, Any] = json.loads(_translated_json())
    return result


@dataclass
class Deployment:
    """A made-up deployment of a CloudFormation template: physical names and ARNs for every
    resource, parameters at their defaults, so `resolve` turns intrinsics into plain values."""

    template: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, parameter in self.template.get("Parameters", {}).items():
            self.parameters.setdefault(name, parameter.get("Default", ""))

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.template["Resources"]
        return resources

    # -- conditions and intrinsics ------------------------------------------------------------

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {key: self.resolve(value) for key, value in node.items()}
        ((key, value),) = node.items()
        if key == "Ref":
            return self.ref(value)
        if key == "Fn::GetAtt":
            logical_id, attribute = value.split(".", 1) if isinstance(value, str) else value
            return self.attribute(logical_id, attribute)
        if key == "Fn::Sub":
            text, variables = (value, {}) if isinstance(value, str) else value
            return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
        if key == "Fn::Join":
            separator, items = value
            return separator.join(str(item) for item in self.resolve(items))
        if key == "Fn::If":
            name, when_true, when_false = value
            return self.resolve(when_true if self.condition(name) else when_false)
        if key == "Fn::Equals":
            left, right = self.resolve(value)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.resolve(value[0])
        if key == "Condition":
            return self.condition(value)
        return {key: self.resolve(value)}

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.attribute(logical_id, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^!][^}]*)\}", replace, text)

    # -- physical names --------------------------------------------------------------------

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.resources[name]["Type"]
        if kind in ("AWS::DynamoDB::Table", "AWS::Logs::LogGroup"):
            return self._given_name(name)
        if kind == "AWS::SQS::Queue":
            region, account = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
            return f"https://sqs.{region}.amazonaws.com/{account}/{self._given_name(name)}"
        if kind in ("AWS::StepFunctions::StateMachine", "AWS::SNS::Topic"):
            return self.attribute(name, "Arn")
        if kind == "AWS::SecretsManager::Secret":
            return self._arn("secretsmanager", f"secret:{STACK}-{name}-AbCdEf")
        return f"{STACK}-{name}-FAKE"

    def attribute(self, logical_id: str, attribute: str) -> Any:
        kind = self.resources[logical_id]["Type"]
        if attribute in ("Name", "QueueName"):
            return self._given_name(logical_id)
        if kind == "AWS::StepFunctions::StateMachine":
            return self._arn("states", f"stateMachine:{self._given_name(logical_id)}")
        if kind == "AWS::SNS::Topic":
            return self._arn("sns", self._given_name(logical_id))
        name = self.ref(logical_id)
        if attribute != "Arn":
            return f"{name}.{attribute}"
        if kind == "AWS::DynamoDB::Table":
            return self._arn("dynamodb", f"table/{name}")
        if kind == "AWS::SQS::Queue":
            return self._arn("sqs", self._given_name(logical_id))
        if kind == "AWS::Lambda::Function":
            return self._arn("lambda", f"function:{name}")
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{PSEUDO['AWS::AccountId']}:role/{name}"
        if kind == "AWS::KMS::Key":
            return self._arn("kms", f"key/{name}")
        if kind == "AWS::Logs::LogGroup":
            return self._arn("logs", f"log-group:{name}:*")
        return self._arn("unknown", f"{kind}/{name}")

    def _given_name(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        properties = resource.get("Properties", {})
        for key in ("TableName", "QueueName", "LogGroupName", "StateMachineName"):
            if key in properties:
                return str(self.resolve(properties[key]))
        return f"{STACK}-{logical_id}-FAKE"

    def _arn(self, service: str, resource: str) -> str:
        region, account = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
        return f"arn:aws:{service}:{region}:{account}:{resource}"
