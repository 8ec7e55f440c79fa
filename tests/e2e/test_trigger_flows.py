"""One whole flow per trigger with the real agent and Docker: trigger → sync job → deploy execution
→ `ferry-agent` → containers at the new commit; application `synced`, repository `success`.

The integration tier checks each trigger's rules (signatures, tokens, schedules, conflicts) with a
scripted agent; this tier shows each of them carries a change all the way onto a host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferry.local.agent_process import AgentProcess
from ferry.local.stack import LocalStack
from ferry.store.repositories import get_repository
from tests.e2e.conftest import application_containers, remove_deployed_projects
from tests.helpers import (
    commit,
    compose,
    create_application,
    events,
    github_push_body,
    github_push_headers,
    wait_for,
    wait_for_idle_sync,
    wait_for_status,
)
from tests.oidc_issuer import Issuer, actions_token

pytestmark = pytest.mark.docker


def _deployed_commit(application_id: str) -> set[str]:
    return {
        c.labels.get("ferry.commit", "")
        for c in application_containers(application_id, running_only=True)
    }


Deployed = tuple[dict[str, Any], dict[str, Any]]


@pytest.fixture
def deployed(
    stack: LocalStack, api: httpx.Client, local_agent: AgentProcess, git_repo: Path, unique: str
) -> Iterator[Callable[..., Deployed]]:
    """A repository (created with `settings`) whose application runs on the local agent."""
    created: list[str] = []

    def make(**settings: Any) -> Deployed:
        assert stack.state is not None
        first = commit(git_repo, "app/compose.yaml", compose(greeting="first"))
        response = api.post("/repositories", json={"url": f"file://{git_repo}", **settings})
        assert response.status_code == 201, response.text
        repository = dict(response.json())
        application = create_application(
            api,
            name=f"trigger {unique}",
            repository_id=repository["id"],
            agent_id=stack.state.agent_id,
        )
        created.append(application["id"])
        wait_for_status(api, application["id"], "synced", commit=first, timeout=90)
        wait_for_idle_sync(repository["id"])
        return repository, application

    yield make
    remove_deployed_projects(set(created))


def _assert_deployed(
    api: httpx.Client, repository: dict[str, Any], application: dict[str, Any], head: str
) -> list[dict[str, Any]]:
    done = wait_for_status(api, application["id"], "synced", commit=head, timeout=90)
    assert done["health_status"] == "healthy"
    wait_for(lambda: _deployed_commit(application["id"]) == {head}, timeout=20, what="containers")
    wait_for_idle_sync(repository["id"])
    assert get_repository(repository["id"]).sync_status.value == "success"
    return [e for e in events(api, application["id"]) if e["commit"] == head]


def test_github_webhook_push_reaches_the_host(
    stack: LocalStack, api: httpx.Client, git_repo: Path, deployed: Callable[..., Deployed]
) -> None:
    repository, application = deployed(sync_type="webhook")
    head = commit(git_repo, "app/compose.yaml", compose(greeting="webhook"))
    body = github_push_body(head)

    response = httpx.post(
        f"{stack.api_url}/api/v1/webhooks/repositories/{repository['id']}",
        content=body,
        headers=github_push_headers(repository["webhook_secret"], body),
    )

    assert response.status_code == 202, response.text
    mine = _assert_deployed(api, repository, application, head)
    assert {e["trigger"] for e in mine} == {"webhook"}


def test_github_actions_callback_reaches_the_host(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    deployed: Callable[..., Deployed],
    actions_issuer: Issuer,
    unique: str,
) -> None:
    repository, application = deployed(
        sync_type="manual", github_actions=True, github_repository=f"octo-org/stack-{unique}"
    )
    head = commit(git_repo, "app/compose.yaml", compose(greeting="actions"))
    token = actions_token(
        actions_issuer,
        stack.api_url,
        head,
        repository=f"octo-org/stack-{unique}",
        repository_id=str(int(unique, 16)),  # a numeric id of its own
        sub=f"repo:octo-org/stack-{unique}:ref:refs/heads/main",
    )

    response = httpx.post(
        f"{stack.api_url}/api/v1/github-actions", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 202, response.text
    mine = _assert_deployed(api, repository, application, head)
    assert {e["trigger"] for e in mine} == {"github_actions"}


def test_polling_schedule_reaches_the_host(
    stack: LocalStack, api: httpx.Client, git_repo: Path, deployed: Callable[..., Deployed]
) -> None:
    repository, application = deployed(sync_type="polling")
    head = commit(git_repo, "app/compose.yaml", compose(greeting="polled"))

    assert stack.cloud.scheduler is not None
    stack.cloud.scheduler.fire_all()  # the template's schedule, as EventBridge would fire it

    mine = _assert_deployed(api, repository, application, head)
    assert {e["trigger"] for e in mine} == {"polling"}


def test_manual_sync_reaches_the_host(
    api: httpx.Client, git_repo: Path, deployed: Callable[..., Deployed]
) -> None:
    repository, application = deployed(sync_type="manual")
    head = commit(git_repo, "app/compose.yaml", compose(greeting="by hand"))

    response = api.post(f"/repositories/{repository['id']}/sync")

    assert response.status_code == 202, response.text
    mine = _assert_deployed(api, repository, application, head)
    assert {e["trigger"] for e in mine} == {"manual"}
