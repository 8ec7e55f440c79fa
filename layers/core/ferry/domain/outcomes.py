"""How a deploy's outcome becomes application status: DESIGN.md's table, as one pure function.

| outcome              | sync_status  | health_status         | last_sync_error             |
|----------------------|--------------|-----------------------|-----------------------------|
| transport error      | out_of_sync  | unchanged             | the reason                  |
| nil/malformed result | out_of_sync  | unchanged             | "agent returned no result"  |
| success = false      | out_of_sync  | unhealthy             | the agent's message         |
| success = true       | synced       | the agent's snapshot  | cleared                     |

A cancel is a transport error ("cancelled") that also ends the request: it stops being the
application's current one, so the agent learns at its next heartbeat that it should stop.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from ferry.domain.messages import DeployResult
from ferry.domain.models import ApplicationSyncStatus, HealthStatus

NO_RESULT = "agent returned no result"
CANCELLED = "cancelled"


class OutcomeKind(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NO_RESULT = "no_result"


class StatusChange(BaseModel):
    """What an outcome does to an application. `health_status=None` leaves health unchanged."""

    kind: OutcomeKind
    sync_status: ApplicationSyncStatus
    health_status: HealthStatus | None
    last_sync_error: str | None
    ends_request: bool = False  # the request stops being the application's current one


def describe_transport_error(
    error: dict[str, Any], *, timeout_seconds: int, heartbeat_seconds: int, elapsed_seconds: float
) -> str:
    """A person-readable reason for a Step Functions error caught around the dispatch.

    Step Functions reports a lapsed heartbeat as `States.Timeout` too, so the time the task ran
    tells the two apart: ending before TimeoutSeconds means the heartbeat stopped.
    """
    name = str(error.get("Error", "")) or "unknown error"
    cause = str(error.get("Cause", "") or "").strip()
    if name == "States.HeartbeatTimeout" or (
        name == "States.Timeout" and elapsed_seconds < timeout_seconds
    ):
        return f"agent stopped responding (no heartbeat for {heartbeat_seconds} s)"
    if name == "States.Timeout":
        return f"agent did not answer within {timeout_seconds} s (is it running?)"
    detail = cause_message(cause)
    return f"deploy finished without a result: {name}" + (f": {detail}" if detail else "")


def cause_message(cause: str) -> str:
    """The readable part of a Step Functions error's cause: Lambda errors arrive as a JSON cause
    ({"errorMessage": ..., "errorType": ...}); anything else is kept, shortened."""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause[:500]
    if isinstance(parsed, dict):
        return str(parsed.get("errorMessage") or parsed.get("message") or cause)[:500]
    return cause[:500]


def interpret_transport_error(reason: str) -> StatusChange:
    """No agent answer reached us (no agent, dispatch failed, timeout, heartbeat lost, ...)."""
    return StatusChange(
        kind=OutcomeKind.NO_RESULT,
        sync_status=ApplicationSyncStatus.OUT_OF_SYNC,
        health_status=None,
        last_sync_error=reason,
    )


def interpret_cancel() -> StatusChange:
    """Someone cancelled the deploy: a transport error that also ends the request."""
    change = interpret_transport_error(CANCELLED)
    return change.model_copy(update={"ends_request": True})


def parse_result(raw: object) -> DeployResult | None:
    """The agent's result, or None when it is missing or malformed."""
    if raw is None:
        return None
    try:
        return DeployResult.model_validate(raw)
    except ValidationError:
        return None


def interpret_result(result: DeployResult | None) -> StatusChange:
    """The agent answered: apply the table's last three rows."""
    if result is None:
        return interpret_transport_error(NO_RESULT)
    if not result.success:
        return StatusChange(
            kind=OutcomeKind.FAILED,
            sync_status=ApplicationSyncStatus.OUT_OF_SYNC,
            health_status=HealthStatus.UNHEALTHY,
            last_sync_error=result.error_message or "the agent reported a failed deploy",
        )
    return StatusChange(
        kind=OutcomeKind.SUCCEEDED,
        sync_status=ApplicationSyncStatus.SYNCED,
        health_status=result.health,
        last_sync_error=None,
    )
