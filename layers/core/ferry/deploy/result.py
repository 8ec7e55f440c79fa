"""ApplyDeployResult: the ONE interpreter of a deploy's outcome, whatever path led to it.

The agent's answer, a transport error the state machine caught, and a cancel all become a
`StatusChange` (domain/outcomes.py, DESIGN.md's table) and are written by `record_outcome`, the
only terminal status write of a deploy request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from ferry.aws.metrics import count_deploy
from ferry.deploy.status import update_application_status
from ferry.domain.messages import DeployInput
from ferry.domain.models import EventStatus, utcnow
from ferry.domain.outcomes import (
    OutcomeKind,
    StatusChange,
    describe_transport_error,
    interpret_result,
    interpret_transport_error,
    parse_result,
)
from ferry.errors import Conflict, NotFound
from ferry.store.applications import release_deploy_slot
from ferry.store.events import complete_event

logger = Logger(child=True)

SUPERSEDED = "superseded by a newer deploy"


def _seconds_since(timestamp: str | None) -> float:
    if not timestamp:
        return 0.0
    return (utcnow() - datetime.fromisoformat(timestamp)).total_seconds()


def _superseded(application_id: str, request_id: str) -> dict[str, Any]:
    complete_event(application_id, request_id, EventStatus.FAILED, error=SUPERSEDED)
    logger.info("deploy superseded", extra={"request_id": request_id})
    return {"applied": False, "reason": "superseded"}


def record_outcome(
    application_id: str,
    request_id: str,
    change: StatusChange,
    *,
    commit: str | None = None,
    commit_message: str | None = None,
) -> dict[str, Any]:
    """Write a deploy request's outcome, if the request is still the application's current one,
    and finish its history entry. Returns what the Notify step needs (`applied` False when a
    newer request or a delete won, and nothing was written).

    A success records `commit` (the one the request deployed) as what the host runs: this is
    the only write that moves it forward.
    """
    changes: dict[str, Any] = {
        "sync_status": change.sync_status,
        "last_sync_error": change.last_sync_error,
    }
    if change.health_status is not None:
        changes["health_status"] = change.health_status
    if change.kind is OutcomeKind.SUCCEEDED:
        changes["last_synced_at"] = utcnow()
        if commit is not None:
            changes["commit"] = commit
            if commit_message is not None:
                changes["commit_message"] = commit_message
    if change.ends_request:
        changes["current_request_id"] = None
    try:
        application = update_application_status(application_id, changes, if_request_id=request_id)
    except NotFound:
        logger.info("deploy result ignored: application deleted", extra={"request_id": request_id})
        return {"applied": False, "reason": "application deleted"}
    except Conflict:
        return _superseded(application_id, request_id)

    complete_event(
        application.id,
        request_id,
        EventStatus.SUCCEEDED if change.kind is OutcomeKind.SUCCEEDED else EventStatus.FAILED,
        error=change.last_sync_error,
    )
    count_deploy(change.kind)
    return {
        "applied": True,
        "outcome": change.kind.value,
        "sync_status": application.sync_status.value,
        "health_status": application.health_status.value,
        "last_sync_error": application.last_sync_error,
    }


def _interpret(deploy_input: DeployInput, payload: dict[str, Any]) -> StatusChange:
    if payload.get("error") is not None:
        reason = describe_transport_error(
            payload["error"],
            timeout_seconds=deploy_input.timeout_seconds,
            heartbeat_seconds=deploy_input.heartbeat_seconds,
            elapsed_seconds=_seconds_since((payload.get("dispatch") or {}).get("marked_at")),
        )
        return interpret_transport_error(reason)
    result = parse_result(payload.get("result"))
    if result is not None and (
        result.request_id != deploy_input.request_id
        or result.application_id != deploy_input.application_id
    ):
        result = None  # an answer to some other request is no answer to this one
    return interpret_result(result)


def apply_deploy_result(payload: dict[str, Any]) -> dict[str, Any]:
    """State-machine task: turn the agent's answer (or the caught error) into application status.

    `payload` is the execution's state: its input, `dispatch` (from MarkInProgress), `slot`, and
    either `result` (the agent's answer) or `error` (what the Catch caught). The deploy slot is
    released whatever the outcome.
    """
    deploy_input = DeployInput.model_validate(payload)
    try:
        if (payload.get("slot") or {}).get("superseded"):
            return _superseded(deploy_input.application_id, deploy_input.request_id)
        return record_outcome(
            deploy_input.application_id,
            deploy_input.request_id,
            _interpret(deploy_input, payload),
            commit=deploy_input.commit,
            commit_message=deploy_input.commit_message,
        )
    finally:
        release_deploy_slot(deploy_input.application_id, deploy_input.request_id)
