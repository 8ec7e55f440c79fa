"""One application deploy: start its execution, and the two state-machine tasks around the agent.

The state machine (functions/statemachines/deploy.asl.json) runs
MarkInProgress → AcquireDeploySlot (one deploy per application at a time) → DispatchToAgent
(waits for the agent's task-token answer) → ApplyDeployResult → Notify.
`apply_deploy_result` is the ONE interpreter of an outcome, whatever path led to it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from ferry import aws
from ferry.domain.messages import DeployInput, DeployJob
from ferry.domain.models import (
    Application,
    ApplicationEvent,
    ApplicationSyncStatus,
    EventStatus,
    EventType,
    SyncOrigin,
    utcnow,
)
from ferry.domain.outcomes import (
    OutcomeKind,
    describe_transport_error,
    interpret_result,
    interpret_transport_error,
    parse_result,
)
from ferry.errors import Conflict, NotFound, PermanentError, TransientError
from ferry.notifications import notify_targets
from ferry.settings import get_settings
from ferry.status import update_application_status
from ferry.store.agents import get_agent
from ferry.store.applications import acquire_deploy_slot, get_application, release_deploy_slot
from ferry.store.events import add_event, complete_event, list_events

logger = Logger(child=True)

_EXECUTION_NAME_LIMIT = 80


def deploy_request_id(application_id: str, commit: str, trigger_id: str) -> str:
    """The deploy's execution name: deterministic, so a duplicate start is a no-op."""
    return f"{application_id}-{commit[:12]}-{trigger_id}"[:_EXECUTION_NAME_LIMIT]


def start_deploy(
    application: Application, request_id: str, origin: SyncOrigin, *, actor: str | None = None
) -> None:
    """Start the deploy execution for the application's recorded commit.

    The caller has already made `request_id` the application's current request. Starting the
    same request twice is harmless: Step Functions refuses the duplicate name.
    """
    if application.commit is None:
        raise PermanentError(f"application {application.id} has no commit to deploy")
    settings = get_settings()
    agent = get_agent(application.agent_id)
    deploy_input = DeployInput(
        application_id=application.id,
        request_id=request_id,
        commit=application.commit,
        origin=origin,
        agent_queue_url=agent.queue_url,
        timeout_seconds=settings.deploy_timeout_seconds,
        heartbeat_seconds=settings.deploy_heartbeat_seconds,
        actor=actor,
    )
    client = aws.stepfunctions()
    try:
        client.start_execution(
            stateMachineArn=settings.deploy_state_machine_arn,
            name=request_id,
            input=deploy_input.model_dump_json(),
        )
    except client.exceptions.ExecutionAlreadyExists:
        logger.info("deploy already started", extra={"request_id": request_id})
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not start the deploy: {exc}") from exc


def _has_running_event(application_id: str, request_id: str) -> bool:
    return any(
        e.request_id == request_id and e.status is EventStatus.RUNNING
        for e in list_events(application_id, limit=20)
    )


def mark_in_progress(payload: dict[str, Any]) -> dict[str, Any]:
    """State-machine task: mark the application `syncing` and build the agent's job.

    Returns {"job": <DeployJob>, "marked_at": <ISO time>}; the time lets ApplyDeployResult tell a
    lapsed heartbeat from an overall timeout.

    Conflict when a newer request has replaced this one (the execution then records nothing).
    """
    deploy_input = DeployInput.model_validate(payload)
    application = get_application(deploy_input.application_id)
    if not (
        application.current_request_id == deploy_input.request_id
        and application.sync_status is ApplicationSyncStatus.SYNCING
    ):
        # Marked once: a Lambda retry after this write finds it done and writes nothing more.
        application = update_application_status(
            deploy_input.application_id,
            {"sync_status": ApplicationSyncStatus.SYNCING, "last_sync_error": None},
            if_request_id=deploy_input.request_id,
        )
    if application.compose_file is None:
        raise PermanentError(f"application {application.id} has no compose file recorded")
    # A Lambda retry may run this twice; the history keeps one running entry per request.
    if not _has_running_event(application.id, deploy_input.request_id):
        add_event(
            ApplicationEvent(
                application_id=application.id,
                type=EventType.DEPLOYMENT,
                source=deploy_input.origin,
                status=EventStatus.RUNNING,
                commit=deploy_input.commit,
                message=f"deploying {deploy_input.commit[:12]}",
                request_id=deploy_input.request_id,
                actor=deploy_input.actor,
            )
        )
    job = DeployJob(
        request_id=deploy_input.request_id,
        application_id=application.id,
        application_name=application.name,
        project_name=application.project_name,
        commit=deploy_input.commit,
        compose_path=application.path,
        compose_file=application.compose_file,
        heartbeat_seconds=deploy_input.heartbeat_seconds,
    )
    return {"job": job.model_dump(mode="json"), "marked_at": utcnow().isoformat()}


def _seconds_since(timestamp: str | None) -> float:
    if not timestamp:
        return 0.0
    return (utcnow() - datetime.fromisoformat(timestamp)).total_seconds()


SUPERSEDED = "superseded by a newer deploy"


def acquire_slot(payload: dict[str, Any]) -> dict[str, bool]:
    """State-machine task: may this deploy go to the agent now?

    `superseded`: a newer request is the application's current one, so this one ends without
    running. `acquired`: this request holds the application's deploy slot (one deploy per
    application at a time, so an older commit can never land after a newer one). Neither: wait.
    """
    deploy_input = DeployInput.model_validate(payload)
    application = get_application(deploy_input.application_id)
    if application.current_request_id != deploy_input.request_id:
        return {"acquired": False, "superseded": True}
    lease = timedelta(seconds=deploy_input.timeout_seconds + 60)
    acquired = acquire_deploy_slot(application.id, deploy_input.request_id, lease)
    return {"acquired": acquired, "superseded": False}


def _superseded(deploy_input: DeployInput) -> dict[str, Any]:
    complete_event(
        deploy_input.application_id, deploy_input.request_id, EventStatus.FAILED, error=SUPERSEDED
    )
    logger.info("deploy superseded", extra={"request_id": deploy_input.request_id})
    return {"applied": False, "reason": "superseded"}


def apply_deploy_result(payload: dict[str, Any]) -> dict[str, Any]:
    """State-machine task: turn the agent's answer (or the caught error) into application status.

    `payload` is the execution's state: its input, `dispatch` (from MarkInProgress), `slot`, and
    either `result` (the agent's answer) or `error` (what the Catch caught). The deploy slot is
    released whatever the outcome.
    """
    deploy_input = DeployInput.model_validate(payload)
    try:
        return _apply(deploy_input, payload)
    finally:
        release_deploy_slot(deploy_input.application_id, deploy_input.request_id)


def _apply(deploy_input: DeployInput, payload: dict[str, Any]) -> dict[str, Any]:
    request_id = deploy_input.request_id
    if (payload.get("slot") or {}).get("superseded"):
        return _superseded(deploy_input)
    if payload.get("error") is not None:
        reason = describe_transport_error(
            payload["error"],
            timeout_seconds=deploy_input.timeout_seconds,
            heartbeat_seconds=deploy_input.heartbeat_seconds,
            elapsed_seconds=_seconds_since((payload.get("dispatch") or {}).get("marked_at")),
        )
        change = interpret_transport_error(reason)
    else:
        result = parse_result(payload.get("result"))
        if result is not None and (
            result.request_id != request_id or result.application_id != deploy_input.application_id
        ):
            result = None  # an answer to some other job is no answer to this one
        change = interpret_result(result)

    changes: dict[str, Any] = {
        "sync_status": change.sync_status,
        "last_sync_error": change.last_sync_error,
    }
    if change.health_status is not None:
        changes["health_status"] = change.health_status
    if change.kind is OutcomeKind.SUCCEEDED:
        changes["last_synced_at"] = utcnow()
    try:
        application = update_application_status(
            deploy_input.application_id, changes, if_request_id=request_id
        )
    except NotFound:
        logger.info("deploy result ignored: application deleted", extra={"request_id": request_id})
        return {"applied": False, "reason": "application deleted"}
    except Conflict:
        return _superseded(deploy_input)

    complete_event(
        application.id,
        request_id,
        EventStatus.SUCCEEDED if change.kind is OutcomeKind.SUCCEEDED else EventStatus.FAILED,
        error=change.last_sync_error,
    )
    return {
        "applied": True,
        "outcome": change.kind.value,
        "sync_status": application.sync_status.value,
        "health_status": application.health_status.value,
        "last_sync_error": application.last_sync_error,
    }


def notify_outcome(payload: dict[str, Any]) -> dict[str, Any]:
    """State-machine task: tell the application's notification targets how the deploy ended.

    Superseded and deleted deploys notify nobody; a failing target never fails the deploy (each
    send's outcome is recorded on its target).
    """
    # ApplyDeployResult's answer sits at $.applied.applied (its ResultSelector wraps it).
    applied = (payload.get("applied") or {}).get("applied") or {}
    if not applied.get("applied"):
        return {"notified": 0}
    deploy_input = DeployInput.model_validate(payload)
    try:
        application = get_application(deploy_input.application_id)
    except NotFound:
        return {"notified": 0}
    if not application.notification_ids:
        return {"notified": 0}
    title, body = deploy_message(application, deploy_input.commit, applied)
    notify_targets(application.notification_ids, title, body)
    return {"notified": len(application.notification_ids)}


def deploy_message(
    application: Application, commit: str, applied: dict[str, Any]
) -> tuple[str, str]:
    """A notification's title and body for a deploy outcome."""
    short = commit[:12]
    outcome = applied.get("outcome")
    error = applied.get("last_sync_error") or ""
    if outcome == OutcomeKind.SUCCEEDED.value:
        return (
            f"Ferry: {application.name} deployed",
            f"{application.name} is running {short} ({applied.get('health_status')}).",
        )
    if outcome == OutcomeKind.FAILED.value:
        return f"Ferry: {application.name} failed to deploy", f"Deploying {short} failed: {error}"
    return (
        f"Ferry: {application.name} deploy finished without a result",
        f"Deploying {short} finished without a result: {error}",
    )
