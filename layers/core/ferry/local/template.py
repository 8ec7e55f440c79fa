"""Turn template.yaml into what the local cloud deploys, with template.yaml as the single source.

SAM is translated offline by aws-sam-translator. moto's CloudFormation then creates what it
supports well (tables, queues, functions, roles). The rest is taken out of the stack and handled by
the local cloud itself, still read from the same template:
- state machines (moto ignores DefinitionSubstitutions and picks a non-executing backend),
- SQS event source mappings (moto would invoke synchronously inside SendMessage),
- API Gateway (uvicorn serves the same FastAPI app),
- the Secrets Manager secret holding the master key (the local stack keeps its key in
  $FERRY_HOME/secret.key and hands it over as FERRY_SECRET_KEY).
References to removed resources become markers that are filled in once those exist. The roles'
policies are projected onto what moto's IAM checks can read (`ferry.local.iam.local_policies`).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from ferry.local.iam import local_policies

CODE_BUCKET = "ferry-local-code"
_CODE_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")
_HANDLED_LOCALLY = (
    "AWS::StepFunctions::StateMachine",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Scheduler::Schedule",
    "AWS::Events::Rule",
)
_DROPPED_PREFIXES = ("AWS::ApiGateway::", "AWS::ApiGatewayV2::", "AWS::SecretsManager::")
_MARKER = "__ferry_local_ref__"


def marker_for(logical_id: str, attribute: str | None = None) -> str:
    """Placeholder string for a reference to a resource that the stack does not create."""
    return f"{_MARKER}{logical_id}{'.' + attribute if attribute else ''}"


def is_marker(value: object) -> bool:
    return isinstance(value, str) and value.startswith(_MARKER)


def marker_target(value: str) -> tuple[str, str | None]:
    logical_id, _, attribute = value[len(_MARKER) :].partition(".")
    return logical_id, attribute or None


@dataclass
class FunctionSpec:
    """Where a function's code lives in this checkout: the module path and attribute to call."""

    logical_id: str
    module: str
    attribute: str
    role: Any = None  # the function's execution role (Fn::GetAtt of the role's Arn)
    serves_api: bool = False  # API Gateway's routes end here (uvicorn serves them locally)


@dataclass
class StateMachineSpec:
    logical_id: str
    definition_path: Path
    substitutions: dict[str, Any]
    role: Any


@dataclass
class EventSourceSpec:
    logical_id: str
    function: Any
    queue_arn: Any
    batch_size: int
    report_batch_item_failures: bool


@dataclass
class ScheduleSpec:
    """A schedule that invokes a function (moto never fires EventBridge; the local cloud does)."""

    logical_id: str
    function: Any
    expression: str
    role: Any = None  # the role the schedule invokes with (EventBridge Scheduler's RoleArn)


@dataclass
class LocalPlan:
    """Everything the local cloud needs, derived from template.yaml."""

    stack_template: dict[str, Any]
    parameters: dict[str, Any]
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    state_machines: list[StateMachineSpec] = field(default_factory=list)
    event_sources: list[EventSourceSpec] = field(default_factory=list)
    schedules: list[ScheduleSpec] = field(default_factory=list)
    code_objects: list[str] = field(default_factory=list)

    def stack_body(self) -> str:
        return json.dumps(self.stack_template)

    @property
    def api_function(self) -> FunctionSpec:
        """The function behind the API's routes."""
        (spec,) = [spec for spec in self.functions.values() if spec.serves_api]
        return spec


class _NoManagedPolicies:
    """SAM resolves managed policy names from its bundled list; nothing is asked of IAM."""

    def load(self) -> dict[str, str]:
        return {}


def _module_for(code_uri: str, handler: str) -> FunctionSpec:
    module_file, _, attribute = handler.rpartition(".")
    package = ".".join(Path(code_uri.strip("/")).parts)
    return FunctionSpec(logical_id="", module=f"{package}.{module_file}", attribute=attribute)


def _replace_sub_refs(text: str, removed: set[str]) -> str:
    """`${Name}` / `${Name.Attribute}` of removed resources inside an Fn::Sub string."""

    def replace(match: re.Match[str]) -> str:
        name, attribute = match.group(1), match.group(2)
        return marker_for(name, attribute) if name in removed else match.group(0)

    return re.sub(r"\$\{([A-Za-z0-9]+)(?:\.([A-Za-z0-9.]+))?\}", replace, text)


def _replace_refs(node: Any, removed: set[str]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"}:
            value = node["Fn::Sub"]
            if isinstance(value, str):
                return {"Fn::Sub": _replace_sub_refs(value, removed)}
            return {
                "Fn::Sub": [_replace_sub_refs(value[0], removed), _replace_refs(value[1], removed)]
            }
        if set(node) == {"Ref"} and node["Ref"] in removed:
            return marker_for(node["Ref"])
        if set(node) == {"Fn::GetAtt"}:
            target = node["Fn::GetAtt"]
            name, attribute = target.split(".", 1) if isinstance(target, str) else target
            if name in removed:
                return marker_for(name, attribute)
        return {key: _replace_refs(value, removed) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace_refs(item, removed) for item in node]
    return node


def _mentions(node: Any, names: set[str]) -> bool:
    text = json.dumps(node)
    return any(f'"{name}"' in text or f"${{{name}" in text for name in names)


def _schedules_of(logical_id: str, properties: dict[str, Any]) -> list[ScheduleSpec]:
    expression = properties.get("ScheduleExpression")
    if not expression:
        return []
    targets = properties.get("Targets") or [properties.get("Target", {})]
    return [
        ScheduleSpec(
            logical_id=logical_id,
            function=target["Arn"],
            expression=expression,
            role=target.get("RoleArn"),
        )
        for target in targets
        if isinstance(target, dict) and "Arn" in target
    ]


def build_plan(template_path: Path, parameters: dict[str, Any], region: str) -> LocalPlan:
    """Read and translate template.yaml into a LocalPlan."""
    project_root = template_path.parent
    sam = yaml_parse(template_path.read_text())
    plan = LocalPlan(stack_template={}, parameters=parameters)

    for logical_id, resource in sam["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            global_handler = sam.get("Globals", {}).get("Function", {}).get("Handler")
            spec = _module_for(properties["CodeUri"], properties.get("Handler", global_handler))
            spec.logical_id = logical_id
            spec.serves_api = any(
                event.get("Type") in ("Api", "HttpApi")
                for event in properties.get("Events", {}).values()
            )
            plan.functions[logical_id] = spec
        if resource["Type"] == "AWS::Serverless::StateMachine":
            plan.state_machines.append(
                StateMachineSpec(
                    logical_id=logical_id,
                    definition_path=project_root / properties["DefinitionUri"],
                    substitutions=properties.get("DefinitionSubstitutions", {}),
                    role={"Fn::GetAtt": [f"{logical_id}Role", "Arn"]},
                )
            )
        for key in _CODE_PROPERTIES:
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://{CODE_BUCKET}/{logical_id}.zip"
                plan.code_objects.append(f"{logical_id}.zip")

    translated = transform(
        copy.deepcopy(sam),
        {**parameters, "AWS::Region": region},
        _NoManagedPolicies(),
    )

    removed: set[str] = set()
    resources = translated["Resources"]
    for logical_id, spec in plan.functions.items():
        spec.role = resources[logical_id]["Properties"]["Role"]
    for logical_id, resource in list(resources.items()):
        kind = resource["Type"]
        if kind == "AWS::Lambda::EventSourceMapping":
            properties = resource["Properties"]
            plan.event_sources.append(
                EventSourceSpec(
                    logical_id=logical_id,
                    function=properties["FunctionName"],
                    queue_arn=properties["EventSourceArn"],
                    batch_size=int(properties.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in properties.get("FunctionResponseTypes", []),
                )
            )
        if kind in ("AWS::Scheduler::Schedule", "AWS::Events::Rule"):
            plan.schedules.extend(_schedules_of(logical_id, resource["Properties"]))
        if kind in _HANDLED_LOCALLY or kind.startswith(_DROPPED_PREFIXES):
            removed.add(logical_id)
            del resources[logical_id]
    # Permissions for the dropped API can go too: nothing invokes through API Gateway locally.
    for logical_id, resource in list(resources.items()):
        if resource["Type"] == "AWS::Lambda::Permission" and _mentions(resource, removed):
            removed.add(logical_id)
            del resources[logical_id]

    translated["Resources"] = local_policies(_replace_refs(resources, removed))
    translated["Outputs"] = {
        name: output
        for name, output in translated.get("Outputs", {}).items()
        if not _mentions(output, removed)
    }
    plan.stack_template = translated
    return plan
