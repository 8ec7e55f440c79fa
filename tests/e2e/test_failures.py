"""Deploys that fail on the host, with the real agent and Docker: the running version stays."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ferry.local.agent_process import AgentProcess
from ferry.local.stack import LocalStack
from tests.e2e.conftest import application_containers
from tests.helpers import (
    commit,
    compose,
    create_application,
    create_repository,
    finished_deployments,
    push_webhook,
    wait_for_status,
)

pytestmark = pytest.mark.docker


def _running(application_id: str) -> list[tuple[str, str]]:
    return [
        (c.id, c.labels.get("ferry.commit", ""))
        for c in application_containers(application_id, running_only=True)
    ]


def test_failed_pull_keeps_the_running_version_and_reports_the_pull_error(
    stack: LocalStack, api: httpx.Client, local_agent: AgentProcess, git_repo: Path, unique: str
) -> None:
    assert stack.state is not None
    good = commit(git_repo, "app/compose.yaml", compose(greeting="good"))
    repository = create_repository(api, git_repo)
    application = create_application(
        api, name=f"pull {unique}", repository_id=repository["id"], agent_id=stack.state.agent_id
    )
    wait_for_status(api, application["id"], "synced", commit=good, timeout=90)
    before = _running(application["id"])
    assert [label for _id, label in before] == [good]

    broken = commit(
        git_repo, "app/compose.yaml", compose(image=f"ferry-local/missing-{unique}:1"), "typo"
    )
    assert (
        push_webhook(stack.api_url, repository["id"], repository["webhook_secret"]).status_code
        == 202
    )

    failed = wait_for_status(api, application["id"], "out_of_sync", target=broken, timeout=90)
    assert failed["health_status"] == "unhealthy"
    assert "pull" in failed["last_sync_error"]
    assert f"missing-{unique}" in failed["last_sync_error"]
    assert _running(application["id"]) == before  # untouched: same container, same commit
    assert finished_deployments(api, application["id"])[0]["status"] == "failed"


def test_compose_file_refused_by_policy_starts_nothing(
    stack: LocalStack, api: httpx.Client, local_agent: AgentProcess, git_repo: Path, unique: str
) -> None:
    assert stack.state is not None
    head = commit(
        git_repo,
        "app/compose.yaml",
        """services:
  root:
    image: ferry-local/busybox:latest
    command: ["sleep", "600"]
    privileged: true
    volumes:
      - /etc:/host-etc
""",
    )
    repository = create_repository(api, git_repo)
    application = create_application(
        api, name=f"policy {unique}", repository_id=repository["id"], agent_id=stack.state.agent_id
    )

    refused = wait_for_status(api, application["id"], "out_of_sync", target=head, timeout=90)

    assert refused["health_status"] == "unhealthy"
    assert "security policy" in refused["last_sync_error"]
    assert "privileged" in refused["last_sync_error"] and "/etc" in refused["last_sync_error"]
    assert _running(application["id"]) == []
