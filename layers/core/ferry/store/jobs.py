"""Sync jobs' progress (queued → running → succeeded | failed, or queued → superseded), kept
for a week."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from ferry.domain.messages import SyncJob
from ferry.domain.models import Trigger, utcnow
from ferry.errors import Conflict, NotFound
from ferry.store.errors import translated
from ferry.store.tables import BranchLatestJobRow, JobRow, transaction

RETENTION = timedelta(days=7)


class JobStatus(BaseModel):
    id: str
    repository_id: str
    trigger: Trigger
    status: str
    branch: str | None = None
    commit: str | None = None
    actor: str | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    created_at: datetime
    finished_at: datetime | None = None


def record_queued(job: SyncJob, *, along: Sequence[Model] = ()) -> bool:
    """Record a new job; False when a job with this id exists already (a duplicate trigger).

    `along`: new rows written in the same transaction as the job (the delivery that asked for
    it), so that both are there or neither: nothing is written for a duplicate. They are new
    rows, so no concurrent request contends for an item of the transaction.
    """
    now = utcnow()
    row = JobRow(
        id=job.job_id,
        status="queued",
        created_at=now,
        expires_at=now + RETENTION,
        **_request(job),
    )
    new = JobRow.id.does_not_exist()
    try:
        with translated(f"job {job.job_id}"):
            if not along:
                row.save(condition=new)
            else:
                with transaction() as write:
                    write.save(row, condition=new)
                    for other in along:
                        write.save(other)
    except Conflict:
        return False
    return True


def forget_job(job_id: str, *, along: Sequence[Model] = ()) -> None:
    """Delete a job's record, and the rows recorded with it: its send failed."""
    with translated(f"job {job_id}"):
        JobRow(id=job_id).delete()
        for other in along:
            other.delete()


def _request(job: SyncJob) -> dict[str, Any]:
    """What a job's row says of the request it was (all but its progress)."""
    values = {
        "repository_id": job.repository_id,
        "trigger": job.trigger.value,
        "branch": job.branch,
        "commit": job.commit,
        "actor": job.actor,
        "message": job.model_dump_json(),
    }
    return {name: value for name, value in values.items() if value is not None}


def _kept_whole(job: SyncJob) -> list[Action]:
    """Update actions that write the job's request where its row lacks it, and keep what it has.

    A job's progress is written with UpdateItem, which creates a row that is not there: the
    record of a job whose send raised is forgotten (so that the sender's retry queues it again),
    yet a send that timed out may have been delivered, and its sync then runs. Without these
    the row would hold a status and nothing of the request (`GET /jobs/{id}` could not answer).
    """
    now = utcnow()
    kept = {**_request(job), "created_at": now, "expires_at": now + RETENTION}
    # `attribute | value` is DynamoDB's if_not_exists(attribute, value).
    return [
        getattr(JobRow, name).set(getattr(JobRow, name) | value) for name, value in kept.items()
    ]


def record_running(job: SyncJob) -> None:
    with translated(f"job {job.job_id}"):
        JobRow(id=job.job_id).update(actions=[JobRow.status.set("running"), *_kept_whole(job)])


def record_finished(
    job: SyncJob, *, ok: bool, error: str | None, result: dict[str, Any] | None
) -> None:
    with translated(f"job {job.job_id}"):
        JobRow(id=job.job_id).update(
            actions=[
                JobRow.status.set("succeeded" if ok else "failed"),
                JobRow.error.set(error) if error else JobRow.error.remove(),
                JobRow.result.set(json.dumps(result)) if result else JobRow.result.remove(),
                JobRow.finished_at.set(utcnow()),
                *_kept_whole(job),
            ]
        )


def record_superseded(job_id: str, by: str) -> bool:
    """End a job that never started as superseded by the newer job `by` (again, for a redelivered
    one); False once its sync has started after all: that run's own outcome stands."""
    try:
        with translated(f"job {job_id}"):
            JobRow(id=job_id).update(
                actions=[
                    JobRow.status.set("superseded"),
                    JobRow.result.set(json.dumps({"skipped": f"superseded by {by}"})),
                    JobRow.finished_at.set(utcnow()),
                ],
                condition=JobRow.status.is_in("queued", "superseded"),
            )
    except Conflict:
        return False
    return True


def branch_key(job: SyncJob) -> str:
    """What a follow-head job supersedes by: its repository, trigger and branch."""
    return f"branch#{job.repository_id}#{job.trigger.value}#{job.branch}"


def record_latest_of_branch(job: SyncJob) -> None:
    """The job is now the newest follow-head job of its branch (by its trigger). Written after the
    job's record and before it is queued, so a job in the queue is always already named here, or
    a newer one is."""
    row = BranchLatestJobRow(
        id=branch_key(job), latest_job=job.job_id, expires_at=utcnow() + RETENTION
    )
    with translated(f"branch {job.branch} of repository {job.repository_id}"):
        row.save()  # the whole row, replaced: nothing else is kept in it


def latest_of_branch(job: SyncJob) -> str | None:
    """The newest follow-head job recorded for the job's branch and trigger (None when none was
    recorded, as for jobs queued before Ferry kept it). One strongly consistent read of one row,
    whatever the number of jobs in flight."""
    try:
        with translated(f"branch {job.branch} of repository {job.repository_id}"):
            row = BranchLatestJobRow.get(branch_key(job), consistent_read=True)
    except NotFound:
        return None
    return row.latest_job


def record_requeued(job_id: str) -> None:
    """The job is queued again (its queue message was lost with the local stack's process)."""
    with translated(f"job {job_id}", on_condition=NotFound):
        JobRow(id=job_id).update(
            actions=[JobRow.status.set("queued")], condition=JobRow.id.exists()
        )


def list_unfinished_jobs() -> list[SyncJob]:
    """The jobs still `queued` or `running`, as they were queued, oldest first. A scan of the
    whole table: for a restart of the local stack, not for a request."""
    with translated("jobs"):
        rows = list(JobRow.scan(JobRow.status.is_in("queued", "running"), consistent_read=True))
    rows.sort(key=lambda row: row.created_at)
    return [
        SyncJob.model_validate_json(row.message)
        if row.message
        else SyncJob(  # recorded before jobs kept their message
            job_id=row.id,
            repository_id=row.repository_id,
            trigger=Trigger(row.trigger),
            branch=row.branch,
            commit=row.commit,
            actor=row.actor,
        )
        for row in rows
        if row.message or (row.repository_id and row.trigger)  # a bare row: nothing to requeue
    ]


def get_job(job_id: str) -> JobStatus:
    with translated(f"job {job_id}"):
        row = JobRow.get(job_id, consistent_read=True)
    if row.repository_id is None or row.trigger is None:
        # A bare progress row (written before progress kept the request whole): nothing says
        # what the job was, so it is as good as gone.
        raise NotFound(f"job {job_id} has no record of its request")
    return JobStatus(
        id=row.id,
        repository_id=row.repository_id,
        trigger=Trigger(row.trigger),
        status=row.status,
        branch=row.branch,
        commit=row.commit,
        actor=row.actor,
        error=row.error,
        result=json.loads(row.result) if row.result else None,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )
