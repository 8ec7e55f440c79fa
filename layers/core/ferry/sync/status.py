"""The single chokepoint for repository status writes (layer 1: syncing, success, failed)."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from ferry.domain.models import RepositorySyncStatus
from ferry.store.feed import announce, announced_with, repository_path
from ferry.store.repositories import set_repository_sync_status


def update_repository_status(
    repository_id: str,
    status: RepositorySyncStatus,
    *,
    error: str | None = None,
    synced_at: datetime | None = None,
    if_syncing_since: datetime | None = None,
    if_not_syncing: bool = False,
    job_id: str | None = None,
) -> None:
    """Write the repository's sync status and announce it on the live feed.

    `if_syncing_since`: only if the repository is still in the sync attempt that started then
    (Conflict otherwise, and nothing is announced: nothing changed). `if_not_syncing`: only if
    no sync is in flight (Conflict otherwise). `job_id`: the sync job a `syncing` is for.
    """
    write = partial(
        set_repository_sync_status,
        repository_id,
        status,
        error=error,
        synced_at=synced_at,
        if_syncing_since=if_syncing_since,
        if_not_syncing=if_not_syncing,
        job_id=job_id,
    )
    path = repository_path(repository_id)
    if if_syncing_since is not None or if_not_syncing:
        # A write that may find its condition false takes no number of the feed before it
        # succeeds (a number taken for nothing would leave a gap in the feed).
        write()
        announce(path, "repository.status")
        return
    announced_with(write, path, "repository.status")
