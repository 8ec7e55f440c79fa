"""Back-to-back pushes with the real agent: the newer commit always ends deployed, and an older
commit is never applied after a newer one (the deploy slot and supersede rules)."""

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

TRIALS = 20


def _container_commits(application_id: str) -> list[str]:
    return [c.labels.get("ferry.commit", "") for c in application_containers(application_id)]


def test_back_to_back_pushes_end_at_the_newer_commit_every_time(
    stack: LocalStack, api: httpx.Client, local_agent: AgentProcess, git_repo: Path, unique: str
) -> None:
    assert stack.state is not None
    first = commit(git_repo, "app/compose.yaml", compose(greeting="start"))
    repository = create_repository(api, git_repo)
    application = create_application(
        api, name=f"order {unique}", repository_id=repository["id"], agent_id=stack.state.agent_id
    )
    wait_for_status(api, application["id"], "synced", commit=first, timeout=90)
    secret = repository["webhook_secret"]

    for trial in range(TRIALS):
        older = commit(git_repo, "app/compose.yaml", compose(greeting=f"a{trial}"), f"A {trial}")
        push_webhook(stack.api_url, repository["id"], secret, {"branch": "main", "commit": older})
        newer = commit(git_repo, "app/compose.yaml", compose(greeting=f"b{trial}"), f"B {trial}")
        push_webhook(stack.api_url, repository["id"], secret, {"branch": "main", "commit": newer})

        done = wait_for_status(api, application["id"], "synced", commit=newer, timeout=90)
        assert done["last_sync_error"] is None, trial
        assert _container_commits(application["id"]) == [newer], trial
        # The host runs the newer commit: had the older one been applied after it, the
        # project's container would carry the older commit's label.
        newer_deploys = [
            e for e in finished_deployments(api, application["id"]) if e["commit"] == newer
        ]
        assert [e["status"] for e in newer_deploys] == ["succeeded"], trial
