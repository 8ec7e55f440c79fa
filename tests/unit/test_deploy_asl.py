"""Static checks of the deploy state machine's ASL and its wiring in template.yaml."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from ferry.domain.messages import DeployInput, DeployMessage
from ferry.errors import TransientError

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "functions" / "statemachines" / "deploy.asl.json"
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
TERMINAL_TYPES = ("Succeed", "Fail")


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    definition = json.loads(ASL_PATH.read_text())
    assert isinstance(definition, dict)
    return definition


@pytest.fixture(scope="module")
def machine_properties() -> dict[str, Any]:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    properties: dict[str, Any] = template["Resources"]["DeployStateMachine"]["Properties"]
    return properties


def _transitions(state: dict[str, Any]) -> list[str]:
    targets = [state[key] for key in ("Next", "Default") if key in state]
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    return targets


def test_deploy_asl_valid_json_with_start_state(asl: dict[str, Any]) -> None:
    assert asl["StartAt"] in asl["States"]
    assert asl["StartAt"] == "Marked"


def test_deploy_asl_marked_input_skips_mark_in_progress(asl: dict[str, Any]) -> None:
    marked = asl["States"]["Marked"]
    with_slot, without_slot = marked["Choices"]
    # Only a request whose dispatch AND slot came with it goes straight to its agent.
    assert sorted(c["Variable"] for c in with_slot["And"]) == ["$.dispatch", "$.slot"]
    assert all(c["IsPresent"] is True for c in with_slot["And"])
    assert with_slot["Next"] == "DispatchToAgent"
    assert (without_slot["Variable"], without_slot["IsPresent"]) == ("$.dispatch", True)
    assert without_slot["Next"] == "AcquireDeploySlot"
    assert marked["Default"] == "MarkInProgress"
    # MarkInProgress's result lands where a sync's input puts it: the later states read one.
    assert asl["States"]["MarkInProgress"]["ResultPath"] == "$.dispatch"


def test_deploy_asl_every_transition_names_existing_state(asl: dict[str, Any]) -> None:
    states = asl["States"]

    dangling = {
        (name, target)
        for name, state in states.items()
        for target in _transitions(state)
        if target not in states
    }

    assert dangling == set()


def test_deploy_asl_every_state_ends_or_moves_on(asl: dict[str, Any]) -> None:
    for name, state in asl["States"].items():
        if state["Type"] in TERMINAL_TYPES:
            continue
        if state["Type"] == "Choice":
            assert state.get("Default") and all("Next" in c for c in state["Choices"]), name
            continue
        assert ("Next" in state) != bool(state.get("End")), name


def test_deploy_asl_every_state_reachable_from_start(asl: dict[str, Any]) -> None:
    states = asl["States"]
    seen: set[str] = set()
    pending = [asl["StartAt"]]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(_transitions(states[name]))

    assert seen == set(states)


def test_deploy_asl_placeholders_all_substituted_by_template(
    asl: dict[str, Any], machine_properties: dict[str, Any]
) -> None:
    placeholders = set(PLACEHOLDER.findall(ASL_PATH.read_text()))
    substitutions = set(machine_properties["DefinitionSubstitutions"])

    assert placeholders
    assert placeholders <= substitutions
    assert substitutions <= placeholders, "a substitution no state uses"


def test_deploy_asl_template_points_at_this_file(machine_properties: dict[str, Any]) -> None:
    assert ROOT / machine_properties["DefinitionUri"] == ASL_PATH
    assert machine_properties["Type"] == "STANDARD"


def test_deploy_asl_dispatch_waits_for_task_token_with_paths(asl: dict[str, Any]) -> None:
    dispatch = asl["States"]["DispatchToAgent"]

    assert dispatch["Type"] == "Task"
    assert dispatch["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    assert dispatch["TimeoutSecondsPath"] == "$.timeout_seconds"
    assert dispatch["HeartbeatSecondsPath"] == "$.heartbeat_seconds"
    assert dispatch["Parameters"]["QueueUrl.$"] == "$.agent_queue_url"
    for path in ("TimeoutSecondsPath", "HeartbeatSecondsPath"):
        assert dispatch[path].removeprefix("$.") in DeployInput.model_fields
    assert "agent_queue_url" in DeployInput.model_fields


def test_deploy_asl_dispatch_message_matches_deploy_message(asl: dict[str, Any]) -> None:
    body = asl["States"]["DispatchToAgent"]["Parameters"]["MessageBody"]

    assert {key.removesuffix(".$") for key in body} == set(DeployMessage.model_fields)
    assert body["task_token.$"] == "$$.Task.Token"


def test_deploy_asl_dispatch_catches_everything_into_apply_result(asl: dict[str, Any]) -> None:
    catchers = asl["States"]["DispatchToAgent"]["Catch"]

    catch_all = [c for c in catchers if "States.ALL" in c["ErrorEquals"]]
    assert len(catch_all) == 1
    assert catch_all[0]["Next"] == "ApplyDeployResult"
    # ASL requires States.ALL alone and in the last catcher.
    assert catchers[-1] is catch_all[0]
    assert catch_all[0]["ErrorEquals"] == ["States.ALL"]
    timeouts = {
        error
        for catcher in catchers
        if catcher["Next"] == "ApplyDeployResult"
        for error in catcher["ErrorEquals"]
    }
    assert {"States.Timeout", "States.HeartbeatTimeout"} <= timeouts
    assert all(catcher["ResultPath"] == "$.error" for catcher in catchers)
    assert asl["States"]["DispatchToAgent"]["Next"] == "ApplyDeployResult"


def test_deploy_asl_mark_in_progress_failure_still_applies_result(asl: dict[str, Any]) -> None:
    catchers = asl["States"]["MarkInProgress"]["Catch"]

    assert any(
        c["ErrorEquals"] == ["States.ALL"] and c["Next"] == "ApplyDeployResult" for c in catchers
    )


def test_deploy_asl_lambda_tasks_retry_transient_errors(asl: dict[str, Any]) -> None:
    lambda_tasks = {
        name: state
        for name, state in asl["States"].items()
        if state.get("Resource") == "arn:aws:states:::lambda:invoke"
    }

    assert set(lambda_tasks) >= {"MarkInProgress", "ApplyDeployResult"}
    for name, state in lambda_tasks.items():
        retried = {error for rule in state.get("Retry", []) for error in rule["ErrorEquals"]}
        assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= retried, name
        assert TransientError.__name__ in retried, name
        assert all(rule["MaxAttempts"] >= 1 for rule in state["Retry"]), name
