"""The deploy state machine's last resort: when ApplyDeployResult keeps failing, the execution
still leaves a terminal status, written by the state machine itself, and announces that write on
the change feed as the status chokepoint would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import ferry.deploy.result
from ferry.aws.executions import describe_deploy
from ferry.errors import PermanentError
from ferry.store.changes import changes_after, latest_change
from tests.helpers import (
    commit,
    compose,
    create_repository,
    deployed_once,
    wait_for,
    wait_for_status,
)

UNRECORDED = "the deploy ended but its result could not be recorded"


def test_result_that_cannot_be_applied_still_ends_out_of_sync_and_is_announced(
    api: httpx.Client, git_repo: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique)

    def broken(_payload: dict[str, Any]) -> dict[str, Any]:
        raise PermanentError("the results table is gone")

    # The in-process ApplyDeployResult Lambda calls this module attribute: make every attempt fail.
    monkeypatch.setattr(ferry.deploy.result, "apply_deploy_result", broken)
    before = latest_change()
    redeploy = api.post(f"/applications/{application['id']}/deploy")
    assert redeploy.status_code == 202, redeploy.text
    request_id = redeploy.json()["request_id"]
    scripted.succeed(scripted.take())

    done = wait_for_status(api, application["id"], "out_of_sync")
    assert done["last_sync_error"] == UNRECORDED
    wait_for(lambda: describe_deploy(request_id).status != "RUNNING", what="the execution to end")
    execution = describe_deploy(request_id)
    assert execution.status == "FAILED"
    assert execution.path[-1] == "DeployResultNotRecorded"
    assert "AnnounceUnappliedChange" in execution.path
    path = f"/api/v1/applications/{application['id']}"
    announced = [c for c in changes_after(before) if c.path == path]
    assert announced[-1].kind == "application.status"
    assert announced[-1].ok is True
    assert "marked out_of_sync directly" in (announced[-1].detail or "")
