"""Deleting an application: its agent tears the compose project down first (the undeploy state
machine, functions/statemachines/undeploy.asl.json); only then does the record go. When the
agent cannot, the application is kept with the reason.

A delete wins: once accepted (`removal_request_id` set, and the removal made the application's
current request), no deploy request is current any more, no new one can start, and the undeploy
takes the deploy slot — it waits for a deploy already at the agent to end, and every deploy still
waiting behind it ends superseded. Nothing of the application runs after its teardown.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from ferry.aws.executions import execution_status, start_execution, undeploy_execution_arn
from ferry.deploy.status import update_application_status
from ferry.domain.messages import UndeployInput, UndeployRequest, UndeployResult
from ferry.domain.models import (
    Application,
    ApplicationEvent,
    EventStatus,
    EventType,
    Trigger,
    new_id,
)
from ferry.domain.outcomes import NO_RESULT, describe_transport_error
from ferry.errors import Conflict, NotFound
from ferry.settings import get_settings
from ferry.store.agents import get_agent
from ferry.store.applications import delete_application, get_application, release_deploy_slot
from ferry.store.bundles import forget_bundles
from ferry.store.events import add_event, complete_event, delete_events
from ferry.store.feed import announce, application_path

logger = Logger(child=True)


@dataclass(frozen=True)
class Removal:
    """Where a removal stands when the caller stops waiting."""

    request_id: str
    finished: bool
    removed: bool
    reason: str | None = None


def forget_application(application_id: str) -> None:
    """Delete the record, its name guards, its history and the bundles it kept in the bundle
    bucket (no agent involved). The bundles go first: a failure leaves the record to retry."""
    forget_bundles(application_id)
    delete_application(application_id)
    delete_events(application_id)
    announce(application_path(application_id), "application.deleted")


def _undeploy_input(application: Application, request_id: str, actor: str | None) -> UndeployInput:
    settings = get_settings()
    agent = get_agent(application.agent_id)
    return UndeployInput(
        application_id=application.id,
        request_id=request_id,
        agent_queue_url=agent.queue_url,
        timeout_seconds=settings.deploy_timeout_seconds,
        heartbeat_seconds=settings.deploy_heartbeat_seconds,
        request=UndeployRequest(
            request_id=request_id,
            application_id=application.id,
            project_name=application.project_name,
            heartbeat_seconds=settings.deploy_heartbeat_seconds,
        ),
        actor=actor,
    )


def start_undeploy(application: Application, request_id: str, actor: str | None = None) -> None:
    """Start (or, after a crash, start again) the removal's execution; a duplicate is a no-op."""
    start_execution(
        get_settings().undeploy_state_machine_arn,
        request_id,
        _undeploy_input(application, request_id, actor).model_dump_json(),
    )


def start_removal(application_id: str, *, actor: str | None = None) -> str:
    """Accept a delete and ask the application's agent to tear its project down; returns the
    removal's request id (the one already under way, when the delete is asked again)."""
    application = get_application(application_id)
    if application.removal_request_id is not None:
        return application.removal_request_id
    request_id = f"{application.id}-remove-{new_id('rm')}"[:80]
    try:
        accepted = update_application_status(
            application.id,
            {"removal_request_id": request_id, "current_request_id": request_id},
            unless_removing=True,
        )
    except Conflict:
        # Two deletes at once: the other one's removal stands.
        current = get_application(application_id).removal_request_id
        if current is None:
            raise
        return current
    add_event(
        ApplicationEvent(
            application_id=application.id,
            type=EventType.DEPLOYMENT,
            trigger=Trigger.MANUAL,
            status=EventStatus.RUNNING,
            message="removing the application from its agent",
            request_id=request_id,
            actor=actor,
        )
    )
    start_undeploy(accepted, request_id, actor)
    return request_id


def wait_for_removal(request_id: str, seconds: float) -> Removal:
    """Poll the removal's execution for up to `seconds`."""
    arn = undeploy_execution_arn(request_id)
    deadline = time.monotonic() + seconds
    while True:
        status, output = execution_status(arn)
        if status != "RUNNING":
            outcome = output.get("outcome") or {}
            return Removal(
                request_id=request_id,
                finished=True,
                removed=bool(outcome.get("removed")),
                reason=outcome.get("reason") or (None if status == "SUCCEEDED" else status),
            )
        if time.monotonic() > deadline:
            return Removal(request_id=request_id, finished=False, removed=False)
        time.sleep(0.25)


def apply_undeploy_result(payload: dict[str, Any]) -> dict[str, Any]:
    """State-machine task: delete the application when its agent removed it, else keep it and
    record why."""
    removal = UndeployInput.model_validate(payload)
    if payload.get("error") is not None:
        reason = describe_transport_error(
            payload["error"],
            timeout_seconds=removal.timeout_seconds,
            heartbeat_seconds=removal.heartbeat_seconds,
            elapsed_seconds=float(removal.timeout_seconds),
        )
    else:
        try:
            result = UndeployResult.model_validate(payload.get("result"))
        except ValueError:
            result = None
        if result is not None and result.success and result.request_id == removal.request_id:
            with contextlib.suppress(NotFound):  # already gone: a retried task
                forget_application(removal.application_id)
            return {"removed": True, "reason": None}
        reason = (result.error_message if result else None) or NO_RESULT
    message = f"could not remove it from its agent: {reason}"
    try:
        # Kept: the delete is over (it may be asked again, and deploys may start again).
        update_application_status(
            removal.application_id,
            {"last_sync_error": message, "removal_request_id": None},
            if_request_id=removal.request_id,
        )
        complete_event(
            removal.application_id, removal.request_id, EventStatus.FAILED, error=message
        )
    except NotFound:
        return {"removed": True, "reason": None}
    except Conflict:
        logger.warning(
            "removal outcome not recorded: no longer current",
            extra={"request_id": removal.request_id},
        )
    finally:
        release_deploy_slot(removal.application_id, removal.request_id)
    logger.info(
        "application kept", extra={"application_id": removal.application_id, "reason": message}
    )
    return {"removed": False, "reason": message}
