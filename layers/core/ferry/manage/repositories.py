"""Repositories as the API offers them."""

from __future__ import annotations

from typing import Any

from ferry.domain.models import (
    Provider,
    Repository,
    RepositoryCredentials,
    SyncType,
)
from ferry.errors import Conflict, InvalidInput
from ferry.git.open import unsupported_reason
from ferry.store.applications import list_repository_applications
from ferry.store.feed import announce, repository_path
from ferry.store.repositories import (
    create_repository,
    delete_repository,
    get_repository,
    rotate_webhook_secret,
    update_repository,
)

MIN_POLLING_INTERVAL = 30


def validate_repository(url: str, provider: Provider, polling_interval_seconds: int) -> str:
    """The cleaned URL, or InvalidInput with the reason Ferry cannot use it."""
    url = url.strip()
    if not url:
        raise InvalidInput("url must not be empty")
    reason = unsupported_reason(url, provider)
    if reason is not None:
        raise InvalidInput(reason)
    if polling_interval_seconds < MIN_POLLING_INTERVAL:
        raise InvalidInput(f"polling_interval_seconds must be at least {MIN_POLLING_INTERVAL}")
    return url


def register_repository(
    url: str,
    provider: Provider,
    sync_type: SyncType,
    polling_interval_seconds: int = 60,
    credentials: RepositoryCredentials | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[Repository, str]:
    """Create a repository; returns it and its webhook secret (shown once).

    `options`: GitHub Actions settings (github_repository, actions_branches, actions_workflows).
    """
    url = validate_repository(url, provider, polling_interval_seconds)
    repository, secret = create_repository(
        url, provider, sync_type, polling_interval_seconds, credentials
    )
    chosen = {k: v for k, v in (options or {}).items() if v is not None}
    if chosen:
        repository = update_repository(repository.id, chosen)
    announce(repository_path(repository.id), "repository.created")
    return repository, secret


def change_repository(
    repository_id: str,
    fields: dict[str, Any],
    *,
    credentials: RepositoryCredentials | None = None,
    clear_credentials: bool = False,
) -> Repository:
    current = get_repository(repository_id)
    merged = {**current.model_dump(), **fields}
    fields = dict(fields)
    if "url" in fields or "provider" in fields or "polling_interval_seconds" in fields:
        fields["url"] = validate_repository(
            merged["url"], Provider(merged["provider"]), int(merged["polling_interval_seconds"])
        )
    for key in ("provider", "sync_type"):
        if key in fields:
            fields[key] = str(getattr(fields[key], "value", fields[key]))
    repository = update_repository(
        repository_id, fields, credentials=credentials, clear_credentials=clear_credentials
    )
    announce(repository_path(repository_id), "repository.updated")
    return repository


def remove_repository(repository_id: str) -> None:
    get_repository(repository_id)
    if list_repository_applications(repository_id):
        raise Conflict("the repository still has applications; remove them first")
    delete_repository(repository_id)
    announce(repository_path(repository_id), "repository.deleted")


def new_webhook_secret(repository_id: str) -> str:
    """Rotate the webhook secret; the new one is shown once."""
    secret = rotate_webhook_secret(repository_id)
    announce(repository_path(repository_id), "repository.updated")
    return secret
