"""Repositories: rows ↔ domain, webhook secrets kept encrypted."""

from __future__ import annotations

from datetime import datetime

from pynamodb.expressions.update import Action

from ferry.domain.models import (
    Provider,
    Repository,
    RepositorySyncStatus,
    SyncType,
    new_id,
    utcnow,
)
from ferry.errors import NotFound
from ferry.security.crypto import get_secret_box
from ferry.security.tokens import new_webhook_secret
from ferry.store.errors import translated
from ferry.store.tables import RepositoryRow, row_values


def _to_domain(row: RepositoryRow) -> Repository:
    return Repository.model_validate(row_values(row))


def create_repository(
    url: str, provider: Provider, sync_type: SyncType, polling_interval_seconds: int
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
        webhook_secret=get_secret_box().encrypt(secret),
        sync_status=RepositorySyncStatus.UNKNOWN.value,
        created_at=now,
        updated_at=now,
    )
    with translated(f"repository {row.id}"):
        row.save(condition=RepositoryRow.id.does_not_exist())
    return _to_domain(row), secret


def get_repository(repository_id: str) -> Repository:
    with translated(f"repository {repository_id}"):
        return _to_domain(RepositoryRow.get(repository_id))


def list_repositories() -> list[Repository]:
    with translated("repositories"):
        rows = list(RepositoryRow.scan())
    return sorted((_to_domain(r) for r in rows), key=lambda r: r.created_at)


def get_webhook_secret(repository_id: str) -> str:
    """The plain webhook secret, to verify a delivery. The API never returns it after create."""
    with translated(f"repository {repository_id}"):
        row = RepositoryRow.get(repository_id, attributes_to_get=["webhook_secret"])
    return get_secret_box().decrypt(row.webhook_secret)


def set_repository_sync_status(
    repository_id: str,
    status: RepositorySyncStatus,
    *,
    error: str | None = None,
    synced_at: datetime | None = None,
) -> None:
    """Layer-1 bookkeeping: `syncing`, then `success` (error cleared) or `failed` (error kept)."""
    actions: list[Action] = [
        RepositoryRow.sync_status.set(status.value),
        RepositoryRow.updated_at.set(utcnow()),
    ]
    if status is RepositorySyncStatus.SUCCESS:
        actions.append(RepositoryRow.last_sync_error.remove())
    elif error is not None:
        actions.append(RepositoryRow.last_sync_error.set(error))
    if synced_at is not None:
        actions.append(RepositoryRow.last_synced_at.set(synced_at))
    with translated(f"repository {repository_id}", on_condition=NotFound):
        RepositoryRow(id=repository_id).update(actions=actions, condition=RepositoryRow.id.exists())
