"""GET /api/v1/applications/{id}/deploys/{request_id}: the path a deploy took through the deploy
state machine, read back from Step Functions (moto runs the ASL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from ferry.local.stack import LocalStack
from tests.helpers import commit, compose, create_repository, deployed_once, events, wait_for


def _deploy_requests(api: httpx.Client, application_id: str) -> list[str]:
    return [e["request_id"] for e in events(api, application_id) if e["type"] == "deployment"]


def test_deploy_route_shows_the_path_through_the_state_machine(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    application, _agent = deployed_once(api, repository["id"], unique)
    [request_id] = _deploy_requests(api, application["id"])

    def finished() -> dict[str, Any] | None:
        response = api.get(f"/applications/{application['id']}/deploys/{request_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["status"] != "RUNNING" else None

    execution = wait_for(finished, what="the deploy's execution to end")
    assert execution["request_id"] == request_id
    assert execution["status"] == "SUCCEEDED"
    assert execution["path"][:2] == ["Marked", "DispatchToAgent"]  # the sync marked it
    assert {"DispatchToAgent", "ApplyDeployResult"} <= set(execution["path"])


def test_deploy_route_refuses_other_applications_requests_and_missing_token(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    first, _ = deployed_once(api, repository["id"], f"{unique}a")
    second, _ = deployed_once(api, repository["id"], f"{unique}b")
    [request_id] = _deploy_requests(api, first["id"])

    assert api.get(f"/applications/{first['id']}/deploys/{request_id}").status_code == 200
    assert api.get(f"/applications/{second['id']}/deploys/{request_id}").status_code == 404
    assert api.get(f"/applications/{first['id']}/deploys/{first['id']}-0-x").status_code == 404
    assert api.get(f"/applications/app_missing/deploys/{request_id}").status_code == 404
    anonymous = httpx.get(f"{stack.api_url}/api/v1/applications/{first['id']}/deploys/{request_id}")
    assert anonymous.status_code == 401
