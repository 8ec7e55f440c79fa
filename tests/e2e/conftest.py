"""End-to-end fixtures: the real agent process on the session's local stack, and cleanup of the
containers the tests deployed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferry.local.agent_process import AgentProcess
from ferry.local.stack import LocalStack


def application_containers(application_id: str, *, running_only: bool = False) -> list[Any]:
    """The containers Ferry deployed for an application (by its `ferry.application-id` label)."""
    import docker

    return list(
        docker.from_env().containers.list(
            all=not running_only, filters={"label": f"ferry.application-id={application_id}"}
        )
    )


def remove_deployed_projects(
    application_ids: set[str], *, deployed_from: Path | None = None
) -> None:
    """Remove containers (and compose default networks) of the given applications, or of every
    project an agent deployed from its `deployed_from` deployments directory."""
    import docker
    import docker.errors

    client = docker.from_env()
    projects: set[str] = set()
    for container in client.containers.list(all=True, filters={"label": "ferry.application-id"}):
        working_dir = container.labels.get("com.docker.compose.project.working_dir", "")
        if container.labels.get("ferry.application-id") in application_ids or (
            deployed_from is not None and Path(working_dir).is_relative_to(deployed_from)
        ):
            projects.add(container.labels.get("com.docker.compose.project", ""))
            container.remove(force=True)
    for project in projects - {""}:
        for network in client.networks.list(names=[f"{project}_default"]):
            with contextlib.suppress(docker.errors.APIError):  # still used by another run
                network.remove()


@pytest.fixture(scope="session")
def local_agent(stack: LocalStack) -> Iterator[AgentProcess]:
    """The real `ferry-agent` process serving the stack's `local` agent."""
    if stack.agent is None or not stack.agent.running:
        stack.start_local_agent()
    assert stack.agent is not None
    yield stack.agent
    stack.agent.stop()
    # By directory, not by asking the stack: other tiers' tests may have pointed the data layer
    # elsewhere by the time session fixtures end.
    remove_deployed_projects(set(), deployed_from=stack.agent.deployments_dir)
