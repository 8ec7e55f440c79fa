"""The application's directory ships with its compose file (issue 18), through the real agent and
Docker: a `.env` variable, an `env_file` and a bind-mounted config file reach the container; a
change to the config file alone redeploys; a file outside the directory is refused with its path;
a directory past the limits fails naming the limit; a bundle carried through the S3 bundle
bucket deploys like an inline one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferry.local.agent_process import AgentProcess
from ferry.local.stack import LocalStack
from ferry.settings import get_settings
from tests.e2e.conftest import application_containers
from tests.helpers import (
    commit,
    create_application,
    create_repository,
    push_webhook,
    wait_for_status,
)

pytestmark = pytest.mark.docker

IMAGE = "ferry-local/busybox:latest"
COMPOSE = f"""services:
  web:
    image: {IMAGE}
    command: [sleep, '600']
    environment:
      FROM_DOTENV: ${{FROM_DOTENV}}
    env_file: [app.env]
    volumes:
      - {{config}}:/etc/app/app.conf:ro
"""


def _compose(config: str = "./app.conf") -> str:
    return COMPOSE.replace("{config}", config)


def _exec(application_id: str, *command: str) -> str:
    [container] = application_containers(application_id, running_only=True)
    exit_code, output = container.exec_run(list(command))
    assert exit_code == 0, output
    return bytes(output).decode()


def _deploy(api: httpx.Client, stack: LocalStack, git_repo: Path, unique: str) -> dict[str, Any]:
    assert stack.state is not None
    repository = create_repository(api, git_repo)
    return create_application(
        api, name=f"bundle {unique}", repository_id=repository["id"], agent_id=stack.state.agent_id
    ) | {"repository": repository}


@pytest.fixture
def through_the_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FERRY_BUNDLE_INLINE_MAX_BYTES", "0")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_env_env_file_and_config_reach_the_container_and_a_config_change_redeploys(
    stack: LocalStack, api: httpx.Client, local_agent: AgentProcess, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/.env", "FROM_DOTENV=dotenv-value\n")
    commit(git_repo, "app/app.env", "FROM_ENV_FILE=env-file-value\n")
    commit(git_repo, "app/app.conf", "version one\n")
    head = commit(git_repo, "app/compose.yaml", _compose())
    application = _deploy(api, stack, git_repo, unique)
    wait_for_status(api, application["id"], "synced", commit=head, timeout=90)

    environment = _exec(application["id"], "env")
    assert "FROM_DOTENV=dotenv-value" in environment
    assert "FROM_ENV_FILE=env-file-value" in environment
    assert _exec(application["id"], "cat", "/etc/app/app.conf") == "version one\n"

    changed = commit(git_repo, "app/app.conf", "version two\n")
    repository = application["repository"]
    push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    wait_for_status(api, application["id"], "synced", commit=changed, timeout=90)

    assert _exec(application["id"], "cat", "/etc/app/app.conf") == "version two\n"


def test_file_outside_the_bundle_refused_then_a_bundle_through_the_bucket_deploys(
    stack: LocalStack,
    api: httpx.Client,
    local_agent: AgentProcess,
    git_repo: Path,
    unique: str,
    through_the_bucket: None,
) -> None:
    commit(git_repo, "app/.env", "FROM_DOTENV=through-s3\n")
    commit(git_repo, "app/app.env", "FROM_ENV_FILE=x\n")
    commit(git_repo, "shared.conf", "outside the directory\n")
    escaping = commit(git_repo, "app/compose.yaml", _compose("../shared.conf"))
    application = _deploy(api, stack, git_repo, unique)

    refused = wait_for_status(api, application["id"], "out_of_sync", target=escaping, timeout=90)
    assert "project_escape" in refused["last_sync_error"]
    assert "shared.conf" in refused["last_sync_error"]
    assert application_containers(application["id"]) == []

    commit(git_repo, "app/app.conf", "carried by S3\n")
    fixed = commit(git_repo, "app/compose.yaml", _compose())
    repository = application["repository"]
    push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    wait_for_status(api, application["id"], "synced", commit=fixed, timeout=90)

    assert _exec(application["id"], "cat", "/etc/app/app.conf") == "carried by S3\n"
    assert "FROM_DOTENV=through-s3" in _exec(application["id"], "env")


def test_directory_past_the_size_limit_fails_naming_the_limit(
    stack: LocalStack,
    api: httpx.Client,
    local_agent: AgentProcess,
    git_repo: Path,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commit(git_repo, "app/big.bin", "x" * 4096)
    commit(git_repo, "app/compose.yaml", _compose())
    monkeypatch.setenv("FERRY_BUNDLE_MAX_BYTES", "1024")
    get_settings.cache_clear()
    try:
        application = _deploy(api, stack, git_repo, unique)
        failed = wait_for_status(api, application["id"], "out_of_sync", timeout=60)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()

    assert "more than a bundle may hold" in failed["last_sync_error"]
    assert "the limit is 1024 bytes (FERRY_BUNDLE_MAX_BYTES)" in failed["last_sync_error"]
    assert application_containers(application["id"]) == []
