"""The repository-sync state machine's Lambda tasks (functions/statemachines/sync.asl.json).

An exception's class name is the error name the state machine catches.
"""

from __future__ import annotations

from ferry.import_phase import collector_paused

with collector_paused():
    from datetime import UTC, datetime
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from ferry.aws.handlers import lambda_handler
    from ferry.aws.metrics import record_sync_duration
    from ferry.domain.messages import SyncJob
    from ferry.sync.run import (
        ResolvedCommit,
        SyncPlan,
        SyncReport,
        describe_caught,
        end_sync,
        plan_sync,
        sync_batch,
    )

logger = Logger()


@lambda_handler
def plan(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = SyncJob.model_validate(event)
    logger.append_keys(job_id=job.job_id, repository_id=job.repository_id)
    return plan_sync(job).model_dump(mode="json")


@lambda_handler
def batch(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = SyncJob.model_validate(event["job"])
    logger.append_keys(job_id=job.job_id, repository_id=job.repository_id)
    planned = SyncPlan(
        repository_id=event["repository_id"],
        commits={b: ResolvedCommit.model_validate(c) for b, c in event["commits"].items()},
        heads=event.get("heads") or {},
        agent_ids=event.get("agent_ids") or [],
    )
    return sync_batch(job, planned, list(event["application_ids"])).model_dump(mode="json")


@lambda_handler
def end(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = SyncJob.model_validate(event["job"])
    logger.append_keys(job_id=job.job_id, repository_id=job.repository_id)
    planned = SyncPlan.model_validate(event["plan"]) if event.get("plan") else None
    batches = [
        SyncReport.model_validate(b | {"repository_id": job.repository_id})
        for b in event.get("batches") or []
    ]
    error = describe_caught(event["error"]) if event.get("error") else None
    ended = end_sync(job, planned, batches, error=error).model_dump(mode="json")
    # One sync, from its job being queued to every deploy handed on (or the failure recorded).
    elapsed = datetime.now(UTC) - job.requested_at
    record_sync_duration(elapsed.total_seconds() * 1000)
    return ended
