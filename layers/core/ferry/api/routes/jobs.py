from __future__ import annotations

from fastapi import APIRouter

from ferry.store.jobs import JobStatus, get_job

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}")
def get_one(job_id: str) -> JobStatus:
    """A sync job's progress: queued, running, succeeded or failed (with the error and what
    happened to each application)."""
    return get_job(job_id)
