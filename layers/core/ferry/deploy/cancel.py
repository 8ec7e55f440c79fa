"""Cancelling the deploy in flight: stop its execution, then let the interpreter record the
cancel (a stopped execution runs no more states, so its own ApplyDeployResult and Notify never
run).

The cancel ends the request: it stops being the application's current one, so nothing the old
execution still does can change the application. An agent already at work finds out at its next
heartbeat, either because the task is gone (Step Functions) or because it asks whether its
request is still current (GET /api/v1/agent/requests/{request_id}), and stops compose.
"""

from __future__ import annotations

from ferry.aws.executions import deploy_execution_arn, stop_execution
from ferry.deploy.notify import notify_deploy_outcome
from ferry.deploy.result import record_outcome
from ferry.domain.models import ApplicationSyncStatus
from ferry.domain.outcomes import interpret_cancel
from ferry.errors import Conflict
from ferry.store.applications import get_application, release_deploy_slot


def cancel_deploy(application_id: str, *, actor: str | None = None) -> str:
    """Cancel the application's running deploy; returns its request id. Conflict if none runs."""
    application = get_application(application_id)
    request_id = application.current_request_id
    if application.removal_request_id is not None:
        raise Conflict("the application is being removed; its removal cannot be cancelled")
    if request_id is None or application.sync_status is not ApplicationSyncStatus.SYNCING:
        raise Conflict("no deploy of this application is running")
    # A request whose execution never started (its start failed) is still ended below.
    stop_execution(
        deploy_execution_arn(request_id),
        error="Cancelled",
        cause=f"cancelled by {actor}" if actor else "cancelled",
    )
    applied = record_outcome(application_id, request_id, interpret_cancel())
    release_deploy_slot(application_id, request_id)
    notify_deploy_outcome(application_id, application.commit or "", applied)
    return request_id
