"""Repositories as the API offers them."""

from __future__ import annotations

from typing import Any

from ferry.domain.models import (
    Provider,
    Repository,
    RepositoryCredentials,
    SyncType,
)
from ferry.domain.validation import (
    MAX_NAME_LENGTH,
    MAX_PATH_LENGTH,
    check_branches,
    check_no_url_credentials,
    check_secret,
    check_text,
    check_texts,
    check_url,
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
_ACTIONS_OPTIONS = ("github_repository", "actions_branches", "actions_workflows")


def validate_repository(url: str, provider: Provider, polling_interval_seconds: int) -> str:
    """The cleaned URL, or InvalidInput with the reason Ferry cannot use it (too long,
    unprintable, credentials in it, a form Ferry cannot read)."""
    url = check_url(url)
    check_no_url_credentials(url)
    reason = unsupported_reason(url, provider)
    if reason is not None:
        raise InvalidInput(reason)
    if polling_interval_seconds < MIN_POLLING_INTERVAL:
        raise InvalidInput(f"polling_interval_seconds must be at least {MIN_POLLING_INTERVAL}")
    return url


def validate_credentials(
    credentials: RepositoryCredentials | None,
) -> RepositoryCredentials | None:
    """The credentials as they can be stored; InvalidInput for an unprintable user name or a
    secret that cannot be (too long, NUL, unpaired surrogates)."""
    if credentials is None:
        return None
    if credentials.username is not None:
        check_text(credentials.username, "auth.username", max_length=MAX_NAME_LENGTH * 2)
    check_secret(credentials.secret, "auth.secret")
    return credentials


def validate_options(options: dict[str, Any]) -> dict[str, Any]:
    """The GitHub Actions settings cleaned (see `register_repository`); InvalidInput otherwise."""
    cleaned = dict(options)
    if cleaned.get("github_repository") is not None:
        full_name = check_text(
            str(cleaned["github_repository"]).strip(), "github_repository", max_length=200
        )
        owner, slash, name = full_name.partition("/")
        if not slash or not owner or not name or "/" in name or " " in full_name:
            raise InvalidInput("github_repository must be owner/repo")
        cleaned["github_repository"] = full_name
    if "actions_branches" in cleaned:
        cleaned["actions_branches"] = check_branches(
            cleaned["actions_branches"], "actions_branches"
        )
    if "actions_workflows" in cleaned:
        cleaned["actions_workflows"] = check_texts(
            cleaned["actions_workflows"], "actions_workflows", max_length=MAX_PATH_LENGTH
        )
    return cleaned


def register_repository(
    url: str,
    provider: Provider,
    sync_type: SyncType,
    polling_interval_seconds: int = 60,
    credentials: RepositoryCredentials | None = None,
    options: dict[str, Any] | None = None,
    *,
    github_actions: bool = False,
) -> tuple[Repository, str]:
    """Create a repository; returns it and its webhook secret (shown once).

    `github_actions` lets Actions runs sync it; `options`: their settings (github_repository,
    actions_branches, actions_workflows).
    """
    url = validate_repository(url, provider, polling_interval_seconds)
    options = validate_options(options or {})
    credentials = validate_credentials(credentials)
    repository, secret = create_repository(
        url,
        provider,
        sync_type,
        polling_interval_seconds,
        credentials,
        github_actions=github_actions,
    )
    chosen = {k: v for k, v in options.items() if v is not None}
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
    fields.update(validate_options({k: v for k, v in fields.items() if k in _ACTIONS_OPTIONS}))
    for key in ("provider", "sync_type"):
        if key in fields:
            fields[key] = str(getattr(fields[key], "value", fields[key]))
    repository = update_repository(
        repository_id,
        fields,
        credentials=validate_credentials(credentials),
        clear_credentials=clear_credentials,
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
