"""Repositories: rows ↔ domain; webhook secrets and credentials kept encrypted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from ferry.domain.models import (
    CredentialKind,
    Provider,
    Repository,
    RepositoryCredentials,
    RepositorySyncStatus,
    SyncType,
    new_id,
    utcnow,
)
from ferry.domain.validation import carries_credentials, url_credentials, without_credentials
from ferry.errors import Conflict, NotFound
from ferry.security.tokens import new_webhook_secret
from ferry.store.errors import translated
from ferry.store.tables import RepositoryRow, row_values, transaction

_EDITABLE = (
    "url",
    "provider",
    "sync_type",
    "polling_interval_seconds",
    "actions_branches",
    "actions_workflows",
    "github_repository",
    "github_actions",
)


def _url_credentials(url: str) -> RepositoryCredentials | None:
    """The credentials an HTTP(S) URL stored by an earlier version carries in its user-info (what
    git sent for it: Basic user:password), None when it carries none. An SSH URL's password was
    never used (SSH authenticates with the deploy key) and its user name is the login."""
    if not carries_credentials(url) or url.split("://", 1)[0].lower() not in ("http", "https"):
        return None
    username, password = url_credentials(url)
    return RepositoryCredentials(
        kind=CredentialKind.BASIC, username=username or "", secret=password or ""
    )


def _to_domain(row: RepositoryRow) -> Repository:
    values = row_values(row)
    # A URL stored with credentials in it (before they were refused) is never shown with them;
    # they count as the repository's credentials until move_url_credentials stores them apart.
    values["url"] = without_credentials(row.url) if carries_credentials(row.url) else row.url
    values["has_credentials"] = (
        values.pop("credentials", None) is not None or _url_credentials(row.url) is not None
    )
    values.pop("webhook_secret", None)
    if values.get("github_actions") is None:
        # Stored before Actions became an opt-in: such repositories keep working as they did.
        values["github_actions"] = True
    return Repository.model_validate(values)


def create_repository(
    url: str,
    provider: Provider,
    sync_type: SyncType,
    polling_interval_seconds: int,
    credentials: RepositoryCredentials | None = None,
    *,
    github_actions: bool = False,
) -> tuple[Repository, str]:
    """Store a new repository; returns it and its webhook secret (the only time it is shown)."""
    secret = new_webhook_secret()
    now = utcnow()
    row = RepositoryRow(
        id=new_id("repo"),
        url=url,
        provider=provider.value,
        sync_type=sync_type.value,
        polling_interval_seconds=polling_interval_seconds,
        webhook_secret=secret,
        credentials=credentials.model_dump_json() if credentials else None,
        sync_status=RepositorySyncStatus.UNKNOWN.value,
        github_actions=github_actions,
        created_at=now,
        updated_at=now,
    )
    with translated(f"repository {row.id}"):
        row.save(condition=RepositoryRow.id.does_not_exist())
    return _to_domain(row), secret


def repository_from_row(row: RepositoryRow) -> Repository:
    """A repository row read with other tables' rows (see store/batch_reads.py)."""
    return _to_domain(row)


def get_repository(repository_id: str) -> Repository:
    with translated(f"repository {repository_id}"):
        return _to_domain(RepositoryRow.get(repository_id, consistent_read=True))


def list_repositories() -> list[Repository]:
    with translated("repositories"):
        rows = list(RepositoryRow.scan())
    return sorted((_to_domain(r) for r in rows), key=lambda r: r.created_at)


def get_repository_and_webhook_secret(repository_id: str) -> tuple[Repository, str]:
    """The repository and its plain webhook secret in one read, for a delivery to verify."""
    with translated(f"repository {repository_id}"):
        row = RepositoryRow.get(repository_id, consistent_read=True)
    return _to_domain(row), str(row.webhook_secret)


def get_credentials(repository_id: str) -> RepositoryCredentials | None:
    """The repository's credentials, for git access only."""
    with translated(f"repository {repository_id}"):
        row = RepositoryRow.get(repository_id, attributes_to_get=["credentials", "url"])
    if row.credentials:
        return RepositoryCredentials.model_validate_json(row.credentials)
    return _url_credentials(row.url)


def move_url_credentials() -> int:
    """Rewrite repositories stored with credentials in their URL (accepted by earlier versions):
    the URL loses them, and unless the repository has credentials of its own they become its
    encrypted credentials, so no table or snapshot holds them in clear. Conditional on the URL
    being unchanged; idempotent. Returns how many rows were rewritten."""
    with translated("repositories"):
        rows = list(RepositoryRow.scan(RepositoryRow.url.contains("@"), consistent_read=True))
    moved = 0
    for row in rows:
        if not carries_credentials(row.url):
            continue
        clean = without_credentials(row.url)
        actions: list[Action] = [RepositoryRow.url.set(clean)]
        derived = _url_credentials(row.url)
        if row.credentials is None and derived is not None:
            actions.append(RepositoryRow.credentials.set(derived.model_dump_json()))
        try:
            with translated(f"repository {row.id}"):
                row.update(actions=actions, condition=RepositoryRow.url == row.url)
        except Conflict:
            continue  # changed meanwhile: the next run looks again
        moved += 1
    return moved


def _update(
    repository_id: str, actions: list[Action], *, condition: Condition | None = None
) -> Repository:
    """Update an existing row (NotFound otherwise); a failed extra `condition` is a Conflict."""
    row = RepositoryRow(id=repository_id)
    exists = RepositoryRow.id.exists()
    with translated(
        f"repository {repository_id}", on_condition=NotFound if condition is None else Conflict
    ):
        row.update(
            actions=[*actions, RepositoryRow.updated_at.set(utcnow())],
            condition=exists if condition is None else exists & condition,
        )
    return _to_domain(row)


def update_repository(
    repository_id: str,
    fields: dict[str, Any],
    *,
    credentials: RepositoryCredentials | None = None,
    clear_credentials: bool = False,
) -> Repository:
    """Change what the user may edit; credentials are replaced or cleared, never read back."""
    attributes = RepositoryRow.get_attributes()
    actions: list[Action] = [
        attributes[name].set(value) for name, value in fields.items() if name in _EDITABLE
    ]
    if credentials is not None:
        actions.append(RepositoryRow.credentials.set(credentials.model_dump_json()))
    elif clear_credentials:
        actions.append(RepositoryRow.credentials.remove())
    return _update(repository_id, actions)


def rotate_webhook_secret(repository_id: str) -> str:
    """A new webhook secret (shown once); the old one stops working at once."""
    secret = new_webhook_secret()
    _update(repository_id, [RepositoryRow.webhook_secret.set(secret)])
    return secret


def mark_polled(repository_id: str, at: datetime) -> None:
    """Note that a poll was queued now (the poller's clock for the next one)."""
    with translated(f"repository {repository_id}", on_condition=NotFound):
        RepositoryRow(id=repository_id).update(
            actions=[RepositoryRow.polled_at.set(at)], condition=RepositoryRow.id.exists()
        )


def record_github_repository_id(repository_id: str, github_id: str) -> None:
    """Remember the GitHub repository id seen on the first verified Actions run (set once)."""
    with translated(f"repository {repository_id}", on_condition=NotFound):
        RepositoryRow(id=repository_id).update(
            actions=[RepositoryRow.github_repository_id.set(github_id)],
            condition=RepositoryRow.id.exists()
            & RepositoryRow.github_repository_id.does_not_exist(),
        )


def delete_repository(repository_id: str) -> None:
    with translated(f"repository {repository_id}", on_condition=NotFound):
        RepositoryRow(id=repository_id).delete(condition=RepositoryRow.id.exists())


def syncing_since(repository: Repository) -> datetime:
    """When the repository's current sync attempt began (meaningful while it is `syncing`).
    Rows from before `sync_started_at` was kept fall back to their last write."""
    return repository.sync_started_at or repository.updated_at


def set_repository_sync_status(
    repository_id: str,
    status: RepositorySyncStatus,
    *,
    error: str | None = None,
    synced_at: datetime | None = None,
    if_syncing_since: datetime | None = None,
    if_not_syncing: bool = False,
    job_id: str | None = None,
    along: Sequence[Model] = (),
) -> None:
    """Layer-1 bookkeeping: `syncing`, then `success` (error cleared) or `failed` (error kept).

    `syncing` also notes when (`sync_started_at`) and for which sync job (`sync_job_id`, so a
    sweeper can tell a sync whose job already ended). `if_syncing_since` makes the write conditional
    on the repository still being in the sync attempt that started then (Conflict otherwise), so
    ending a stalled sync never overwrites a newer attempt or its result. Rows written before
    `sync_started_at` existed are matched on `updated_at` instead (see `syncing_since`).
    `if_not_syncing` claims the repository for a new sync (Conflict when one is in flight).
    `along`: new rows written in the same transaction (the change that announces the write).
    """
    actions: list[Action] = [RepositoryRow.sync_status.set(status.value)]
    if status is RepositorySyncStatus.SYNCING:
        actions.append(RepositoryRow.sync_started_at.set(utcnow()))
        if job_id is not None:
            actions.append(RepositoryRow.sync_job_id.set(job_id))
    elif status is RepositorySyncStatus.SUCCESS:
        actions.append(RepositoryRow.last_sync_error.remove())
        actions.append(RepositoryRow.failures.set(0))
    elif status is RepositorySyncStatus.FAILED:
        actions.append(RepositoryRow.failures.add(1))
    if error is not None:
        actions.append(RepositoryRow.last_sync_error.set(error))
    if synced_at is not None:
        actions.append(RepositoryRow.last_synced_at.set(synced_at))
    condition: Condition | None = None
    if if_syncing_since is not None:
        legacy = RepositoryRow.sync_started_at.does_not_exist() & (
            RepositoryRow.updated_at == if_syncing_since
        )
        condition = (RepositoryRow.sync_status == RepositorySyncStatus.SYNCING.value) & (
            (RepositoryRow.sync_started_at == if_syncing_since) | legacy
        )
    elif if_not_syncing:
        condition = RepositoryRow.sync_status != RepositorySyncStatus.SYNCING.value
    if along:
        _update_with(repository_id, actions, condition=condition, along=along)
    else:
        _update(repository_id, actions, condition=condition)


def _update_with(
    repository_id: str,
    actions: list[Action],
    *,
    condition: Condition | None,
    along: Sequence[Model],
) -> None:
    """`_update` (without reading the row back) in one transaction with `along`: new rows, such
    as the change on the live feed that announces the write."""
    exists = RepositoryRow.id.exists()
    with (
        translated(
            f"repository {repository_id}", on_condition=NotFound if condition is None else Conflict
        ),
        transaction() as write,
    ):
        write.update(
            RepositoryRow(id=repository_id),
            actions=[*actions, RepositoryRow.updated_at.set(utcnow())],
            condition=exists if condition is None else exists & condition,
        )
        for row in along:
            write.save(row)
