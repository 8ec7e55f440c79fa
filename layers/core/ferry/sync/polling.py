"""Polling (the EventBridge schedule's job): queue a sync for every polling repository that is
due. A repository whose syncs keep failing is polled less often (doubling, up to 32 times), so a
broken repository is not retried every tick; its next success resets the pace.

The same tick ends syncs that can no longer finish: a repository `syncing` for longer than
`sync_stalled_after_seconds` (the sync queue's visibility timeout times maxReceiveCount, plus a
margin) had its job die on every receive, so the job went to the dead-letter queue and nothing
would ever end the sync. It is marked `failed` (any repository, whatever its sync type), which
also lets polling and manual syncs run again. Applications are left alone: their deploys end in
their own executions.

And it moves credentials that earlier versions accepted inside repository URLs into the
encrypted credentials (`move_url_credentials`), so a deployment upgraded in place holds none in
clear within a minute, with no step for the operator.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from ferry.aws.queues import dead_sync_jobs
from ferry.domain.messages import SyncJob
from ferry.domain.models import Repository, RepositorySyncStatus, SyncType, Trigger, utcnow
from ferry.errors import Conflict, FerryError, NotFound
from ferry.settings import get_settings
from ferry.store.jobs import get_job, record_finished
from ferry.store.repositories import (
    get_repository,
    list_repositories,
    mark_polled,
    move_url_credentials,
    syncing_since,
)
from ferry.sync.queue import enqueue_sync_job
from ferry.sync.status import update_repository_status

logger = Logger(child=True)

MAX_BACKOFF_FACTOR = 32


def next_poll_at(repository: Repository) -> datetime | None:
    """When the repository is due next (None: now)."""
    if repository.polled_at is None:
        return None
    factor = min(2 ** max(repository.failures, 0), MAX_BACKOFF_FACTOR)
    return repository.polled_at + timedelta(seconds=repository.polling_interval_seconds * factor)


def sync_stalled(repository: Repository, now: datetime, stalled_after_seconds: int) -> bool:
    """True when the repository has been `syncing` for longer than `stalled_after_seconds`."""
    if repository.sync_status is not RepositorySyncStatus.SYNCING:
        return False
    return now - syncing_since(repository) > timedelta(seconds=stalled_after_seconds)


def stalled_sync_error(stalled_after_seconds: int) -> str:
    return (
        f"sync did not finish within {stalled_after_seconds} s "
        "(its job went to the dead-letter queue)"
    )


def end_stalled_sync(repository: Repository, stalled_after_seconds: int) -> bool:
    """Mark a stalled sync `failed` (announced on the feed); False when the repository moved on
    meanwhile (a new attempt started, or the sync ended) or could not be written."""
    since = syncing_since(repository)
    try:
        update_repository_status(
            repository.id,
            RepositorySyncStatus.FAILED,
            error=stalled_sync_error(stalled_after_seconds),
            if_syncing_since=since,
        )
    except Conflict:
        logger.info("stalled sync moved on meanwhile", extra={"repository_id": repository.id})
        return False
    except FerryError:
        logger.exception("stalled sync not ended", extra={"repository_id": repository.id})
        return False
    logger.warning(
        "stalled sync ended failed",
        extra={"repository_id": repository.id, "syncing_since": since.isoformat()},
    )
    return True


def end_finished_sync(repository: Repository, now: datetime) -> bool:
    """A repository still `syncing` whose sync job has already ended (the sync's last write was
    lost) or is gone ends the way its job did. False when there is nothing to end."""
    if repository.sync_job_id is None:
        return False
    since = syncing_since(repository)
    if now - since < timedelta(seconds=get_settings().deploy_start_grace_seconds):
        return False
    error: str | None
    try:
        job = get_job(repository.sync_job_id)
    except NotFound:
        status, error = RepositorySyncStatus.FAILED, "its sync job is gone"
    else:
        if job.status in ("queued", "running"):
            return False
        ok = job.status == "succeeded"
        status = RepositorySyncStatus.SUCCESS if ok else RepositorySyncStatus.FAILED
        error = None if ok else (job.error or "its sync job failed")
    try:
        update_repository_status(
            repository.id,
            status,
            error=error,
            synced_at=now if status is RepositorySyncStatus.SUCCESS else None,
            if_syncing_since=since,
        )
    except Conflict:
        return False
    logger.warning(
        "sync ended by the sweeper",
        extra={"repository_id": repository.id, "job_id": repository.sync_job_id},
    )
    return True


DEAD_LETTERED = "its sync job failed on every attempt and went to the dead-letter queue"


def end_dead_lettered_jobs() -> list[str]:
    """Jobs that died in the dead-letter queue end `failed` (so `GET /jobs/{id}` says so), and
    so does the repository sync they were; returns their ids."""
    ended = []
    for job in dead_sync_jobs():
        try:
            if get_job(job.job_id).status in ("succeeded", "failed", "superseded"):
                continue
        except NotFound:
            continue
        record_finished(job, ok=False, error=DEAD_LETTERED, result=None)
        ended.append(job.job_id)
        try:
            repository = get_repository(job.repository_id)
        except NotFound:
            continue
        if (
            repository.sync_status is RepositorySyncStatus.SYNCING
            and repository.sync_job_id == job.job_id
        ):
            with contextlib.suppress(Conflict):
                update_repository_status(
                    repository.id,
                    RepositorySyncStatus.FAILED,
                    error=DEAD_LETTERED,
                    if_syncing_since=syncing_since(repository),
                )
    return ended


def poll_due_repositories(now: datetime | None = None) -> list[str]:
    """Queue a polling sync for each due repository; returns their ids. Syncs that can no longer
    finish (their job ended, is gone, or stalled in the dead-letter queue) are ended on the way
    (a polling repository is polled again next tick)."""
    now = now or utcnow()
    stalled_after = get_settings().sync_stalled_after_seconds
    try:
        end_dead_lettered_jobs()
    except FerryError:
        logger.exception("dead-lettered jobs not ended")
    moved = move_url_credentials()
    if moved:
        logger.info("credentials moved out of repository URLs", extra={"repositories": moved})
    queued: list[str] = []
    for repository in list_repositories():
        try:
            if _poll_one(repository, now, stalled_after):
                queued.append(repository.id)
        except Exception:
            # Whatever went wrong with one repository, the others are still polled and their
            # syncs still ended: one tick a minute serves them all.
            logger.exception("repository not polled", extra={"repository_id": repository.id})
    return queued


def _poll_one(repository: Repository, now: datetime, stalled_after: int) -> bool:
    """One repository's part of the tick; True when a polling sync was queued for it."""
    if repository.sync_status is RepositorySyncStatus.SYNCING:
        if sync_stalled(repository, now, stalled_after):
            end_stalled_sync(repository, stalled_after)
        else:
            end_finished_sync(repository, now)
        return False  # one sync in flight per repository
    if repository.sync_type is not SyncType.POLLING:
        return False
    due = next_poll_at(repository)
    if due is not None and due > now:
        return False
    enqueue_sync_job(SyncJob(repository_id=repository.id, trigger=Trigger.POLLING))
    mark_polled(repository.id, now)
    return True
