"""The sync-job queue: every trigger ends here, and the sync worker starts from here.

The queue is FIFO with one message group per repository (one sync of a repository in flight at
a time, in order); the job id is the deduplication id, so a repeated trigger within SQS's
five-minute window is dropped by SQS itself.

Duplicates. A job's id comes from its business event (SyncJob.business_key):
- the same delivery (a provider's redelivery) is the same job for as long as jobs are kept;
- the same repository + branch + commit without a delivery id is the same job only while that
  job is queued or running. Once it has finished, naming the commit again (a rollback re-run, a
  sender without delivery ids) is a new sync: its id is derived from the finished job's, so
  concurrent repeats still agree on one id and exactly one of them is queued.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from aws_lambda_powertools import Logger
from pynamodb.models import Model

from ferry.aws.executions import ExecutionView, describe_sync, start_execution
from ferry.aws.queues import send_sync_job
from ferry.domain.messages import SyncJob
from ferry.errors import FerryError, NotFound, TransientError
from ferry.settings import get_settings
from ferry.store.jobs import (
    JobStatus,
    branch_key,
    forget_job,
    get_job,
    latest_of_branch,
    record_latest_of_branch,
    record_queued,
    record_superseded,
)

logger = Logger(child=True)

# A commit named again after its sync finished gets the next id in a chain; the chain is as long
# as the number of finished syncs of that commit still kept (a week), so this is a safety net.
MAX_REPEATS = 200
_IN_FLIGHT = ("queued", "running")


def _repeat_id(finished: JobStatus) -> str:
    """The id of the sync that repeats a finished one (the same for every concurrent caller)."""
    marker = (finished.finished_at or finished.created_at).isoformat()
    return f"job_{hashlib.sha256(f'{finished.id}:{marker}'.encode()).hexdigest()[:16]}"


def enqueue_sync_job(job: SyncJob) -> str:
    """Record and queue a sync job; returns its job id (the existing one for a duplicate)."""
    job_id, _ = enqueue_sync_job_recording(job, lambda _job_id: ())
    return job_id


def enqueue_sync_job_recording(
    job: SyncJob, along: Callable[[str], Sequence[Model]]
) -> tuple[str, bool]:
    """Record and queue a sync job, writing `along(job_id)` (the log entry of the delivery that
    asked for it) in the same transaction as the job's record when the job is new: one round
    trip for both. Returns the job id and whether those rows were written (not for a duplicate,
    which queues nothing); when the send fails, they are deleted with the job's record."""
    written: Sequence[Model] = ()
    for _attempt in range(MAX_REPEATS):
        rows = along(job.job_id)
        if record_queued(job, along=rows):
            written = rows
            break
        if job.delivery_id or not job.commit:
            return job.job_id, False  # the same delivery was queued before: nothing new to do
        try:
            earlier = get_job(job.job_id)
        except NotFound:
            continue  # forgotten meanwhile (its send failed): record it again
        if earlier.status in _IN_FLIGHT:
            return job.job_id, False  # the same commit is being synced right now
        job = job.model_copy(update={"job_id": _repeat_id(earlier)})
    else:
        raise TransientError(f"could not queue sync job: {MAX_REPEATS} repeats of {job.job_id}")
    try:
        if _follows_head(job):
            record_latest_of_branch(job)  # before the send: see superseding_job
        send_sync_job(job)
    except FerryError:
        forget_job(job.job_id, along=written)  # so that the sender's retry queues it again
        raise
    return job.job_id, bool(written)


def _follows_head(job: SyncJob) -> bool:
    # A hint that one branch moved: its sync resolves the branch head, whatever moved it.
    return (
        job.branch is not None
        and job.commit is None
        and job.tag is None
        and job.application_id is None
    )


def superseding_job(job: SyncJob) -> str | None:
    """A newer job that does everything this one would (None when there is none).

    Both follow the head of the same branch for the same trigger. Each such job is named the
    branch's latest before it is queued, so when the worker is handed this job and the branch
    names another one, that one was recorded after this one and is queued behind it (or ran
    since): its sync resolves the head later than this job's delivery said the branch moved, so
    running this one as well would only deploy what that one deploys, or record `no_change`.
    Read with one strongly consistent read, this check is where a job starts: a job queued
    before it supersedes this one, one queued after it is behind a sync that has begun. A newer
    job that will not run (its send failed and it was forgotten, or it failed) supersedes
    nothing. A job naming a commit, a tag or one application is never superseded.
    """
    if not _follows_head(job):
        return None
    latest = latest_of_branch(job)
    if latest is None or latest == job.job_id:
        return None
    try:
        newer = get_job(latest)
    except NotFound:
        return None
    return latest if newer.status in ("queued", "running", "succeeded") else None


def superseded_in_receive(received: Sequence[tuple[SyncJob, bool]]) -> dict[str, str]:
    """Which jobs of one receive of the sync queue a job behind them in the same receive makes
    needless: job id → that newer job's id.

    `received` is in queue order, each job with whether this is its first receive. Within one
    message group (one repository) a FIFO receive keeps the order jobs were queued in, so a
    follow-head job of the same branch and trigger further on was queued after this one and
    resolves the head later, as `superseding_job` reads from the branch's row. Only a job
    received for the first time is taken as the newer one: nothing has run it yet, so it runs
    behind this one or gives way to a newer job in turn (a redelivered one may have run and
    failed, and a failed job supersedes nothing). The jobs the receive itself proves needless
    then cost their worker no read.
    """
    newest: dict[str, str] = {}
    superseded: dict[str, str] = {}
    for job, first_receive in reversed(received):
        if not _follows_head(job):
            continue
        key = branch_key(job)
        newer = newest.get(key)
        if newer is not None and newer != job.job_id:
            superseded[job.job_id] = newer
        elif newer is None and first_receive:
            newest[key] = job.job_id
    return superseded


def start_sync_execution(job: SyncJob, newer_in_receive: str | None = None) -> bool:
    """Start the job's repository-sync execution (named after the job); False when it was
    started before (a redelivered job starts nothing) or when a newer job of its branch makes it
    needless: it then ends `superseded` without starting (no execution, no history event).
    `newer_in_receive`: the newer job `superseded_in_receive` found behind it, if any (the
    branch's row is then not read)."""
    newer = newer_in_receive or superseding_job(job)
    if newer is not None and record_superseded(job.job_id, newer):
        logger.info("sync job superseded", extra={"job_id": job.job_id, "by": newer})
        return False
    return start_execution(get_settings().sync_state_machine_arn, job.job_id, job.model_dump_json())


def job_progress(job_id: str) -> tuple[JobStatus, ExecutionView | None]:
    """A sync job as recorded, and its repository-sync execution as the console shows it (None
    while it has not started, or when the job never needed one)."""
    job = get_job(job_id)
    try:
        return job, describe_sync(job_id)
    except NotFound:
        return job, None
