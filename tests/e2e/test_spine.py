"""The spine end to end: real git, real moto execution of the ASL, the real agent process and a
real Docker daemon with compose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from ferry.local.agent_process import AgentProcess
from ferry.local.sample import head_commit
from ferry.local.stack import LocalStack
from tests.conftest import TEST_HEARTBEAT_SECONDS
from tests.helpers import (
    commit,
    compose,
    create_application,
    create_repository,
    events,
    finished_deployments,
    get_application,
    push_webhook,
    wait_for,
    wait_for_status,
)

pytestmark = pytest.mark.docker


def _containers(application_id: str) -> list[Any]:
    return list(
        docker.from_env().containers.list(
            all=True, filters={"label": f"ferry.application-id={application_id}"}
        )
    )


@pytest.fixture
def deployed(
    stack: LocalStack, api: httpx.Client, local_agent: AgentProcess, git_repo: Path, unique: str
) -> tuple[dict, dict, Path]:
    """A fresh repository and application on the local agent, deployed at its first commit."""
    assert stack.state is not None
    head = commit(git_repo, "app/compose.yaml", compose(greeting="v1"))
    repository = create_repository(api, git_repo)
    application = create_application(
        api, name=f"e2e {unique}", repository_id=repository["id"], agent_id=stack.state.agent_id
    )
    wait_for_status(api, application["id"], "synced", commit=head, timeout=90)
    finished_deployments(api, application["id"])  # its event is completed a moment after
    return repository, application, git_repo


def test_sample_application_deploys_at_head_with_project_label(
    stack: LocalStack, api: httpx.Client, local_agent: AgentProcess
) -> None:
    state = stack.state
    assert state is not None and state.sample_webhook_secret is not None
    head = head_commit(state.sample_path)
    # Trigger a sync now the agent runs (the first deploy may have been dispatched before it did).
    response = push_webhook(stack.api_url, state.sample_repository.id, state.sample_webhook_secret)
    assert response.status_code == 202

    application = wait_for_status(
        api, state.sample_application.id, "synced", commit=head, timeout=90
    )

    assert application["health_status"] == "healthy"
    containers = _containers(application["id"])
    assert [c.labels["com.docker.compose.project"] for c in containers] == ["hello"]
    assert containers[0].status == "running"


def test_push_changing_compose_redeploys_at_new_commit(
    stack: LocalStack, api: httpx.Client, deployed: tuple[dict, dict, Path]
) -> None:
    repository, application, repo = deployed
    [before] = _containers(application["id"])
    head = commit(repo, "app/compose.yaml", compose(greeting="v2"), "v2")

    response = push_webhook(
        stack.api_url,
        repository["id"],
        repository["webhook_secret"],
        {"ref": "refs/heads/main", "commit": head},
    )
    assert response.status_code == 202
    done = wait_for_status(api, application["id"], "synced", commit=head, timeout=90)

    [after] = _containers(application["id"])
    assert after.id != before.id  # recreated with the new configuration
    assert after.labels["ferry.commit"] == head
    assert after.status == "running"
    assert done["last_sync_error"] is None
    deployments = finished_deployments(api, application["id"])
    assert [e["status"] for e in deployments][:2] == ["succeeded", "succeeded"]


def test_push_leaving_compose_unchanged_records_no_change_and_keeps_container(
    stack: LocalStack, api: httpx.Client, deployed: tuple[dict, dict, Path]
) -> None:
    repository, application, repo = deployed
    [before] = _containers(application["id"])
    deployments_before = [e for e in events(api, application["id"]) if e["type"] == "deployment"]
    head = commit(repo, "README.md", "only docs\n", "docs")

    assert (
        push_webhook(stack.api_url, repository["id"], repository["webhook_secret"]).status_code
        == 202
    )

    wait_for(
        lambda: [
            e
            for e in events(api, application["id"])
            if e["status"] == "no_change" and e["commit"] == head
        ],
        what="a no_change event",
    )
    assert wait_for_status(api, application["id"], "synced", commit=head)["last_sync_error"] is None
    [after] = _containers(application["id"])
    assert after.id == before.id
    assert [
        e for e in events(api, application["id"]) if e["type"] == "deployment"
    ] == deployments_before


def test_webhook_with_bad_secret_answers_401_and_changes_nothing(
    stack: LocalStack, api: httpx.Client, deployed: tuple[dict, dict, Path]
) -> None:
    repository, application, repo = deployed
    before = events(api, application["id"])
    commit(repo, "app/compose.yaml", compose(greeting="sneaky"))

    response = push_webhook(stack.api_url, repository["id"], "wrong-secret")

    assert response.status_code == 401
    stack.cloud.pollers[0].poll_once(wait_seconds=1)
    assert events(api, application["id"]) == before
    deployed_commit = get_application(api, application["id"])["commit"]
    assert [c.labels["ferry.commit"] for c in _containers(application["id"])] == [deployed_commit]


def test_agent_stopped_deploy_times_out_out_of_sync_then_agent_serves_again(
    stack: LocalStack,
    api: httpx.Client,
    local_agent: AgentProcess,
    deployed: tuple[dict, dict, Path],
) -> None:
    repository, application, repo = deployed
    local_agent.stop()
    try:
        head = commit(repo, "app/compose.yaml", compose(greeting="while-stopped"))
        assert (
            push_webhook(stack.api_url, repository["id"], repository["webhook_secret"]).status_code
            == 202
        )

        done = wait_for_status(
            api, application["id"], "out_of_sync", target=head, timeout=TEST_HEARTBEAT_SECONDS + 30
        )
        assert "agent stopped responding" in done["last_sync_error"]
    finally:
        stack.start_local_agent()

    # The stale job left in the queue is dropped, not deployed behind the control plane's back.
    later = commit(repo, "app/compose.yaml", compose(greeting="back"))
    assert (
        push_webhook(stack.api_url, repository["id"], repository["webhook_secret"]).status_code
        == 202
    )
    wait_for_status(api, application["id"], "synced", commit=later, timeout=90)
    [container] = _containers(application["id"])
    assert container.labels["ferry.commit"] == later


def test_delete_application_tears_down_its_project_on_the_agent(
    stack: LocalStack, api: httpx.Client, deployed: tuple[dict, dict, Path]
) -> None:
    _repository, application, _repo = deployed
    assert _containers(application["id"])
    project_dir = stack.home / "deployments" / application["project_name"]
    assert project_dir.exists()

    response = api.delete(f"/applications/{application['id']}")

    assert response.status_code == 204, response.text
    assert _containers(application["id"]) == []
    assert not project_dir.exists()
    assert api.get(f"/applications/{application['id']}").status_code == 404
