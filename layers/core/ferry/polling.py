"""Polling (the EventBridge schedule's job): queue a sync for every polling repository that is
due. A repository whose syncs keep failing is polled less often (doubling, up to 32 times), so a
broken repository is not retried every tick; its next success resets the pace."""

from __future__ import annotations

from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from ferry.domain.messages import SyncJob
from ferry.domain.models import Repository, RepositorySyncStatus, SyncOrigin, SyncType, utcnow
from ferry.errors import FerryError
from ferry.jobs import enqueue_sync_job
from ferry.store.repositories import list_repositories, mark_polled

logger = Logger(child=True)

MAX_BACKOFF_FACTOR = 32


def next_poll_at(repository: Repository) -> datetime | None:
    """When the repository is due next (None: now)."""
    if repository.polled_at is None:
        return None
    factor = min(2 ** max(repository.failures, 0), MAX_BACKOFF_FACTOR)
    return repository.polled_at + timedelta(seconds=repository.polling_interval_seconds * factor)


def poll_due_repositories(now: datetime | None = None) -> list[str]:
    """Queue a polling sync for each due repository; returns their ids."""
    now = now or utcnow()
    queued: list[str] = []
    for repository in list_repositories():
        if repository.sync_type is not SyncType.POLLING:
            continue
        if repository.sync_status is RepositorySyncStatus.SYNCING:
            continue  # one sync in flight per repository
        due = next_poll_at(repository)
        if due is not None and due > now:
            continue
        try:
            enqueue_sync_job(
                SyncJob(repository_id=repository.id, origin=SyncOrigin.REPOSITORY_POLLING)
            )
            mark_polled(repository.id, now)
            queued.append(repository.id)
        except FerryError:
            logger.exception("poll not queued", extra={"repository_id": repository.id})
    return queued
