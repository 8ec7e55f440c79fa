"""After a restart: records an earlier version stored are brought up to date, and work the
previous run left in flight can no longer finish."""

from __future__ import annotations

from ferry.deploy.status import update_application_status
from ferry.domain.models import ApplicationSyncStatus, RepositorySyncStatus
from ferry.store.applications import list_applications
from ferry.store.repositories import list_repositories, move_url_credentials
from ferry.store.rotation import reindex_names
from ferry.sync.status import update_repository_status

INTERRUPTED = "interrupted by restart"


def upgrade_stored_records() -> None:
    """Before the restored tables are snapshotted again: credentials out of repository URLs
    (into the encrypted credentials) and name guards under the current normalization (NFKC)."""
    move_url_credentials()
    reindex_names()


def end_interrupted_work() -> tuple[int, int]:
    """Applications left `syncing` end `out_of_sync`, repositories left `syncing` end `failed`."""
    applications = 0
    for application in list_applications():
        if application.sync_status is ApplicationSyncStatus.SYNCING:
            update_application_status(
                application.id,
                {"sync_status": ApplicationSyncStatus.OUT_OF_SYNC, "last_sync_error": INTERRUPTED},
            )
            applications += 1
    repositories = 0
    for repository in list_repositories():
        if repository.sync_status is RepositorySyncStatus.SYNCING:
            update_repository_status(repository.id, RepositorySyncStatus.FAILED, error=INTERRUPTED)
            repositories += 1
    return applications, repositories
