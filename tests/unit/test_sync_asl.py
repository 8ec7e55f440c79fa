"""Static checks of the repository-sync state machine's ASL and its wiring in template.yaml: every
path ends in a recorded terminal status (EndSync, or the direct write when EndSync cannot), and
the tasks run the functions the template names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from ferry.errors import TransientError

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "functions" / "statemachines" / "sync.asl.json"
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
# The last-resort chain runs after EndSync failed: it has nowhere further to go on errors.
LAST_RESORT = {
    "RecordSyncFailure",
    "RecordJobFailure",
    "CountFailureChange",
    "AnnounceFailure",
}


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    definition = json.loads(ASL_PATH.read_text())
    assert isinstance(definition, dict)
    return definition


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
    return parsed


def _all_states(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    states = dict(asl["States"])
    for state in asl["States"].values():
        if state["Type"] == "Map":
            states.update(state["ItemProcessor"]["States"])
    return states


def _transitions(state: dict[str, Any]) -> list[str]:
    targets = [state[key] for key in ("Next", "Default") if key in state]
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    return targets


def test_sync_asl_every_transition_names_existing_state(asl: dict[str, Any]) -> None:
    states = asl["States"]
    dangling = {
        (name, target)
        for name, state in states.items()
        for target in _transitions(state)
        if target not in states
    }
    assert dangling == set()


def test_sync_asl_every_failing_state_is_caught_into_end_sync(asl: dict[str, Any]) -> None:
    states = asl["States"]
    uncaught = [
        name
        for name, state in states.items()
        if state["Type"] in ("Task", "Map")
        and name not in LAST_RESORT
        and name != "EndSync"
        and [c["Next"] for c in state.get("Catch", []) if "States.ALL" in c["ErrorEquals"]]
        != ["EndSync"]
    ]
    assert uncaught == []
    assert states["EndSync"]["Catch"][0]["Next"] == "RecordSyncFailure"


def test_sync_asl_lambda_tasks_retry_transient_errors(asl: dict[str, Any]) -> None:
    for name, state in _all_states(asl).items():
        if state.get("Resource") == "arn:aws:states:::lambda:invoke":
            errors = {e for retry in state.get("Retry", []) for e in retry["ErrorEquals"]}
            assert TransientError.__name__ in errors, name
            assert "Lambda.TooManyRequestsException" in errors, name


def test_sync_asl_applications_fan_out_in_a_bounded_map(asl: dict[str, Any]) -> None:
    fan_out = asl["States"]["SyncApplications"]
    assert fan_out["Type"] == "Map"
    assert fan_out["ItemsPath"] == "$.plan.batches"
    assert isinstance(fan_out["MaxConcurrency"], int) and 1 <= fan_out["MaxConcurrency"] <= 40


def test_sync_asl_nothing_new_ends_right_after_the_plan(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert states["PlanSync"]["Next"] == "NothingToSync"
    [skip] = states["NothingToSync"]["Choices"]
    assert states[skip["Next"]]["Type"] == "Succeed"


def test_sync_asl_placeholders_are_the_templates_substitutions(
    asl: dict[str, Any], template: dict[str, Any]
) -> None:
    wanted = set(PLACEHOLDER.findall(ASL_PATH.read_text()))
    properties = template["Resources"]["SyncStateMachine"]["Properties"]
    assert wanted == set(properties["DefinitionSubstitutions"])
    assert properties["DefinitionUri"] == "functions/statemachines/sync.asl.json"


def test_sync_asl_tasks_name_handlers_of_the_sync_tasks_module(template: dict[str, Any]) -> None:
    import functions.sync_tasks.app as tasks

    for logical_id in ("PlanSyncFunction", "SyncBatchFunction", "EndSyncFunction"):
        properties = template["Resources"][logical_id]["Properties"]
        assert properties["CodeUri"] == "functions/sync_tasks/"
        handler = properties["Handler"].removeprefix("app.")
        assert callable(getattr(tasks, handler)), logical_id
