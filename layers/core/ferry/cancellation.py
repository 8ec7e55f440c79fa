"""Cancelling the deploy in flight: stop its execution and write the terminal status ourselves
(a stopped execution runs no more states).

The request also stops being the application's current one, so nothing the old execution still
does can change the application (its result would count as superseded). An agent already at work
finds out at its next heartbeat, either because the task is gone (Step Functions) or because it
asks whether its job is still current (GET /api/v1/agent/jobs/{request_id}), and stops compose.
"""

from __future__ import annotations

import contextlib

from botocore.exceptions import BotoCoreError, ClientError

from ferry import aws
from ferry.deploys import deploy_message
from ferry.domain.models import Application, ApplicationSyncStatus, EventStatus
from ferry.domain.outcomes import OutcomeKind
from ferry.errors import Conflict, TransientError
from ferry.executions import deploy_execution_arn
from ferry.notifications import notify_targets
from ferry.status import update_application_status
from ferry.store.applications import get_application, release_deploy_slot
from ferry.store.events import complete_event

CANCELLED = "cancelled"


def cancel_deploy(application_id: str, *, actor: str | None = None) -> str:
    """Cancel the application's running deploy; returns its request id. Conflict if none runs."""
    application = get_application(application_id)
    request_id = application.current_request_id
    if request_id is None or application.sync_status is not ApplicationSyncStatus.SYNCING:
        raise Conflict("no deploy of this application is running")
    client = aws.stepfunctions()
    try:
        client.stop_execution(
            executionArn=deploy_execution_arn(request_id),
            error="Cancelled",
            cause=f"cancelled by {actor}" if actor else "cancelled",
        )
    except client.exceptions.ExecutionDoesNotExist:
        pass  # started from a queue that never reached Step Functions: still end it below
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not stop the deploy: {exc}") from exc
    cancelled: Application | None = None
    with contextlib.suppress(Conflict):  # a newer deploy took over meanwhile: it stands
        cancelled = update_application_status(
            application_id,
            {
                "sync_status": ApplicationSyncStatus.OUT_OF_SYNC,
                "last_sync_error": CANCELLED,
                "current_request_id": None,
            },
            if_request_id=request_id,
        )
    complete_event(application_id, request_id, EventStatus.FAILED, error=CANCELLED)
    release_deploy_slot(application_id, request_id)
    if cancelled is not None and cancelled.notification_ids:
        # DESIGN.md: a cancelled deploy is a transport error, told as "finished without a
        # result" (the stopped execution's own Notify never runs).
        title, body = deploy_message(
            cancelled,
            application.commit or "",
            {
                "outcome": OutcomeKind.NO_RESULT.value,
                "last_sync_error": CANCELLED,
                "health_status": cancelled.health_status.value,
            },
        )
        notify_targets(cancelled.notification_ids, title, body)
    return request_id
