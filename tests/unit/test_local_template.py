"""build_plan on the real template.yaml: what the local cloud deploys and what it handles itself."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferry.local.template import (
    CODE_BUCKET,
    LocalPlan,
    build_plan,
    is_marker,
    marker_for,
    marker_target,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REMOVED_TYPES = ("AWS::StepFunctions::StateMachine", "AWS::Lambda::EventSourceMapping")
REMOVED_PREFIXES = ("AWS::ApiGateway::", "AWS::ApiGatewayV2::", "AWS::SecretsManager::")


@pytest.fixture(scope="module")
def plan() -> Iterator[LocalPlan]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield build_plan(
            TEMPLATE,
            {
                "DeployTimeoutSeconds": "900",
                "DeployHeartbeatSeconds": "60",
            },
            "us-east-1",
        )


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _references(node: Any) -> Iterator[str]:
    """Every logical id a Ref or Fn::GetAtt in `node` points at."""
    for item in _walk(node):
        if not isinstance(item, dict) or len(item) != 1:
            continue
        if "Ref" in item:
            yield item["Ref"]
        if "Fn::GetAtt" in item:
            target = item["Fn::GetAtt"]
            yield target.split(".", 1)[0] if isinstance(target, str) else target[0]


def test_build_plan_functions_mapped_to_importable_handlers(plan: LocalPlan) -> None:
    expected = {
        "ApiFunction": ("functions.api.app", "handler"),
        "SyncWorkerFunction": ("functions.sync_worker.app", "handler"),
        "MarkInProgressFunction": ("functions.deploy_tasks.mark_in_progress", "handler"),
        "ApplyDeployResultFunction": ("functions.deploy_tasks.apply_deploy_result", "handler"),
        "ApplyUndeployResultFunction": ("functions.deploy_tasks.apply_undeploy_result", "handler"),
        "PollerFunction": ("functions.poller.app", "handler"),
        "AcquireDeploySlotFunction": ("functions.deploy_tasks.acquire_deploy_slot", "handler"),
        "NotifyFunction": ("functions.deploy_tasks.notify_outcome", "handler"),
        "PlanSyncFunction": ("functions.sync_tasks.app", "plan"),
        "SyncBatchFunction": ("functions.sync_tasks.app", "batch"),
        "EndSyncFunction": ("functions.sync_tasks.app", "end"),
    }

    assert {
        logical_id: (spec.module, spec.attribute) for logical_id, spec in plan.functions.items()
    } == expected
    for logical_id, spec in plan.functions.items():
        assert spec.logical_id == logical_id
        module = importlib.import_module(spec.module)
        assert callable(getattr(module, spec.attribute))


def test_build_plan_deploy_state_machine_definition_and_substitutions(plan: LocalPlan) -> None:
    machines = {machine.logical_id: machine for machine in plan.state_machines}
    assert set(machines) == {"SyncStateMachine", "DeployStateMachine", "UndeployStateMachine"}
    machine = machines["DeployStateMachine"]

    assert machine.definition_path == ROOT / "functions" / "statemachines" / "deploy.asl.json"
    assert machine.definition_path.is_file()
    assert set(machine.substitutions) == {
        "MarkInProgressFunctionArn",
        "AcquireDeploySlotFunctionArn",
        "ApplyDeployResultFunctionArn",
        "NotifyFunctionArn",
        "ApplicationsTableName",
        "CountersTableName",
        "ChangesTableName",
    }
    assert machine.substitutions["MarkInProgressFunctionArn"] == {
        "Fn::GetAtt": ["MarkInProgressFunction", "Arn"]
    }
    assert machine.substitutions["ApplicationsTableName"] == {"Ref": "ApplicationsTable"}
    assert machine.role == {"Fn::GetAtt": ["DeployStateMachineRole", "Arn"]}
    assert "DeployStateMachineRole" in plan.stack_template["Resources"]


def test_build_plan_sync_queue_one_event_source_reporting_item_failures(plan: LocalPlan) -> None:
    assert len(plan.event_sources) == 1
    source = plan.event_sources[0]

    assert source.report_batch_item_failures is True
    assert source.batch_size == 10
    assert source.function == {"Ref": "SyncWorkerFunction"}
    assert source.queue_arn == {"Fn::GetAtt": ["SyncJobsQueue", "Arn"]}


def test_build_plan_stack_template_keeps_no_locally_handled_resource(plan: LocalPlan) -> None:
    kinds = {resource["Type"] for resource in plan.stack_template["Resources"].values()}

    assert not kinds & set(REMOVED_TYPES)
    assert not [kind for kind in kinds if kind.startswith(REMOVED_PREFIXES)]
    assert "AWS::Lambda::Permission" not in kinds
    assert {"AWS::Lambda::Function", "AWS::SQS::Queue", "AWS::DynamoDB::Table"} <= kinds


def test_build_plan_state_machine_references_become_markers(plan: LocalPlan) -> None:
    resources = plan.stack_template["Resources"]

    for function in ("ApiFunction", "SyncBatchFunction"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        arn = variables["FERRY_DEPLOY_STATE_MACHINE_ARN"]
        assert is_marker(arn)
        assert marker_target(arn) == ("DeployStateMachine", None)
    markers = [item for item in _walk(resources) if is_marker(item)]
    assert markers
    # The API's alarm and the dashboard name the HTTP API, which uvicorn stands in for locally.
    assert {marker_target(marker)[0] for marker in markers} == {
        "SyncStateMachine",
        "DeployStateMachine",
        "UndeployStateMachine",
        "EncryptionSecret",
        "HttpApi",
    }


def test_build_plan_no_reference_to_removed_resource_left(plan: LocalPlan) -> None:
    template = plan.stack_template
    known = set(template["Resources"]) | set(template.get("Parameters", {}))

    dangling = {
        name
        for name in _references([template["Resources"], template.get("Outputs", {})])
        if name not in known and not name.startswith("AWS::")
    }

    assert dangling == set()
    body = plan.stack_body()
    assert "ServerlessHttpApi" not in body
    assert '"DeployStateMachine"' not in body


def test_build_plan_outputs_of_removed_resources_dropped(plan: LocalPlan) -> None:
    assert set(plan.stack_template["Outputs"]) == {
        "SyncJobsDeadLetterQueueUrl",
        "DashboardName",
        "AlarmTopicArn",
    }


def test_build_plan_function_code_points_at_local_code_bucket(plan: LocalPlan) -> None:
    functions = {
        logical_id: resource
        for logical_id, resource in plan.stack_template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }

    assert set(functions) == set(plan.functions)
    for logical_id, resource in functions.items():
        code = resource["Properties"]["Code"]
        assert code["S3Bucket"] == CODE_BUCKET
        assert code["S3Key"] == f"{logical_id}.zip"
        assert code["S3Key"] in plan.code_objects


def test_build_plan_stack_body_is_json_of_stack_template(plan: LocalPlan) -> None:
    assert json.loads(plan.stack_body()) == plan.stack_template


def test_build_plan_does_not_modify_template_file(plan: LocalPlan) -> None:
    assert "DefinitionUri: functions/statemachines/deploy.asl.json" in TEMPLATE.read_text()


@pytest.mark.parametrize(
    ("logical_id", "attribute"), [("DeployStateMachine", None), ("DeployStateMachine", "Name")]
)
def test_marker_for_round_trip_returns_target(logical_id: str, attribute: str | None) -> None:
    marker = marker_for(logical_id, attribute)

    assert is_marker(marker)
    assert marker_target(marker) == (logical_id, attribute)


@pytest.mark.parametrize("value", ["DeployStateMachine", "", None, 3, {"Ref": "X"}])
def test_is_marker_ordinary_value_false(value: object) -> None:
    assert not is_marker(value)
