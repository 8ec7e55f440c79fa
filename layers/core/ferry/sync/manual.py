"""The manual trigger: `POST /api/v1/repositories/{id}/sync` (CLI `ferry repo sync`), and the
whole-repository sync it shares with a GitHub Actions run that asks for `sync_repo`."""

from __future__ import annotations

from ferry.domain.messages import SyncJob
from ferry.domain.models import RepositorySyncStatus, Trigger
from ferry.errors import Conflict, FerryError
from ferry.store.repositories import get_repository
from ferry.sync.queue import enqueue_sync_job
from ferry.sync.status import update_repository_status


def start_whole_sync(job: SyncJob) -> str:
    """Queue a sync of every branch (manual, or an Actions run with sync_repo): the repository is
    claimed `syncing` first, atomically, so a second request while one is queued or running is a
    Conflict (409) however close together they come. Returns the job id."""
    try:
        update_repository_status(
            job.repository_id, RepositorySyncStatus.SYNCING, if_not_syncing=True, job_id=job.job_id
        )
    except Conflict:
        raise Conflict(
            "a sync of this repository is in flight; try again when it has finished"
        ) from None
    try:
        return enqueue_sync_job(job)
    except FerryError as exc:
        # Not queued: the claim must not outlive it (nothing else would end it for an hour).
        update_repository_status(
            job.repository_id, RepositorySyncStatus.FAILED, error=f"sync not queued: {exc}"
        )
        raise


def request_sync(repository_id: str, *, actor: str | None = None) -> str:
    """A manual sync; 404 for an unknown repository, 409 while one is in flight. Returns the job
    id."""
    get_repository(repository_id)
    return start_whole_sync(
        SyncJob(repository_id=repository_id, trigger=Trigger.MANUAL, actor=actor)
    )
