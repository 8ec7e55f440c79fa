"""What `ferry up` sets up inside a fresh (or restored) local cloud.

An admin API token (kept in $FERRY_HOME/local.json), the `local` agent (its token in
$FERRY_HOME/agent.token, minted again when it no longer works: someone rotated it), and the sample
repository with its one application. (Queues that a restart lost are recovery.py's.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ferry.domain.models import Application, Provider, Repository, SyncType
from ferry.errors import Unauthorized
from ferry.local.private_files import write_private
from ferry.local.sample import (
    SAMPLE_APPLICATION,
    SAMPLE_BRANCH,
    SAMPLE_COMPOSE_PATH,
    choose_sample_image,
    create_sample_repository,
)
from ferry.manage.agents import register_agent
from ferry.manage.applications import register_application
from ferry.manage.repositories import register_repository
from ferry.store.agents import authenticate_agent, find_agent_by_name, rotate_agent_token
from ferry.store.applications import list_repository_applications
from ferry.store.repositories import list_repositories
from ferry.store.tokens import api_token_is_valid, create_api_token

LOCAL_AGENT = "local"


@dataclass
class LocalState:
    api_url: str
    token: str
    agent_id: str
    agent_token: str
    sample_repository: Repository
    sample_application: Application
    sample_webhook_secret: str | None  # only known on the run that created the repository
    sample_path: Path
    sample_image_note: str


def _saved_admin_token(local_json: Path) -> str:
    """The token local.json keeps; "" when there is none, or the file cannot be read (an older
    Ferry wrote it in place, and a crash mid-write left it empty)."""
    try:
        saved = json.loads(local_json.read_text())
    except (FileNotFoundError, ValueError):
        return ""
    token = saved.get("token", "") if isinstance(saved, dict) else ""
    return token if isinstance(token, str) else ""


def local_admin_token(home: Path, api_url: str) -> str:
    """The admin token `ferry up` keeps in local.json: the saved one while it works, else a new
    one."""
    local_json = home / "local.json"
    token = _saved_admin_token(local_json)
    if token and api_token_is_valid(token):
        write_private(local_json, json.dumps({"api_url": api_url, "token": token}, indent=2))
        return token
    token = create_api_token("local admin (ferry up)")
    write_private(local_json, json.dumps({"api_url": api_url, "token": token}, indent=2))
    return token


def _token_file(home: Path) -> Path:
    return home / "agent.token"


def renew_agent_token(home: Path, agent_id: str) -> str:
    """Mint a new token for the local agent and keep it; the old one stops working."""
    token = rotate_agent_token(agent_id)
    write_private(_token_file(home), token)
    return token


def _token_works(token: str, agent_id: str) -> bool:
    try:
        return authenticate_agent(token).id == agent_id
    except Unauthorized:
        return False


def local_agent_credentials(home: Path, name: str = LOCAL_AGENT) -> tuple[str, str]:
    """The local agent's id and a token that works: registered on the first run, the stored
    token on later ones, a new one when the stored one was rotated (or lost)."""
    existing = find_agent_by_name(name)
    if existing is None:
        agent, token = register_agent(name)
        write_private(_token_file(home), token)
        return agent.id, token
    token_file = _token_file(home)
    stored = token_file.read_text().strip() if token_file.exists() else ""
    if stored and _token_works(stored, existing.id):
        return existing.id, stored
    return existing.id, renew_agent_token(home, existing.id)


def bootstrap(home: Path, api_url: str) -> LocalState:
    token = local_admin_token(home, api_url)
    agent_id, agent_token = local_agent_credentials(home)

    sample_path = home / "sample-repo"
    sample_url = f"file://{sample_path}"
    repository = next((r for r in list_repositories() if r.url == sample_url), None)
    secret: str | None = None
    note = "kept from the previous run"
    if repository is None:
        image, note = choose_sample_image()
        note = f"{image} ({note})"
        if not (sample_path / ".git").exists():
            create_sample_repository(sample_path, image)
        repository, secret = register_repository(sample_url, Provider.GIT, SyncType.WEBHOOK)
        write_private(home / "sample-webhook.secret", secret)
    else:
        secret_file = home / "sample-webhook.secret"
        secret = secret_file.read_text().strip() if secret_file.exists() else None
    applications = list_repository_applications(repository.id)
    if applications:
        application = applications[0]
    else:
        application, _job = register_application(
            name=SAMPLE_APPLICATION,
            repository_id=repository.id,
            agent_id=agent_id,
            branch=SAMPLE_BRANCH,
            path=SAMPLE_COMPOSE_PATH,
        )
    return LocalState(
        api_url=api_url,
        token=token,
        agent_id=agent_id,
        agent_token=agent_token,
        sample_repository=repository,
        sample_application=application,
        sample_webhook_secret=secret,
        sample_path=sample_path,
        sample_image_note=note,
    )
