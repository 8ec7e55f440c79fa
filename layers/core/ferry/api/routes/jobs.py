from __future__ import annotations

from fastapi import APIRouter

from ferry.api.schemas import ExecutionOut, JobOut
from ferry.sync.queue import job_progress

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}")
def get_one(job_id: str) -> JobOut:
    """A sync job's progress: queued, running, succeeded or failed (with the error and what
    happened to each application), or superseded by a newer job of its branch before it ran;
    and its repository-sync execution: status and the states it went through, as the Step
    Functions console shows them."""
    job, execution = job_progress(job_id)
    return JobOut(
        **job.model_dump(),
        execution=(
            ExecutionOut(name=execution.name, status=execution.status, path=execution.path)
            if execution is not None
            else None
        ),
    )
