"""Registering applications; a new application is synced (and so deployed) right away."""

from __future__ import annotations

from ferry.domain.messages import SyncJob
from ferry.domain.models import Application, SyncOrigin
from ferry.domain.naming import compose_project_name
from ferry.errors import InvalidInput, NotFound
from ferry.git import normalize_repo_path
from ferry.jobs import enqueue_sync_job
from ferry.store.agents import get_agent
from ferry.store.applications import create_application
from ferry.store.repositories import get_repository


def register_application(
    *, name: str, repository_id: str, agent_id: str, branch: str, path: str
) -> tuple[Application, str]:
    """Create an application and queue its first sync; returns it and that sync's job id."""
    name = name.strip()
    if not name:
        raise InvalidInput("application name must not be empty")
    compose_project_name(name)  # InvalidInput when it cannot name a compose project
    path = normalize_repo_path(path)
    for check in (lambda: get_repository(repository_id), lambda: get_agent(agent_id)):
        try:
            check()
        except NotFound as exc:
            raise InvalidInput(str(exc)) from exc
    application = create_application(
        name=name, repository_id=repository_id, agent_id=agent_id, branch=branch.strip(), path=path
    )
    job_id = enqueue_sync_job(
        SyncJob(
            repository_id=repository_id,
            origin=SyncOrigin.APPLICATION_CREATED,
            branch=application.branch,
        )
    )
    return application, job_id
