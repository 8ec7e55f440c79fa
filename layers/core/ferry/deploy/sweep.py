"""The sweeper (run on every poller tick): no application stays `syncing` once nothing works on
it, and no accepted delete is forgotten.

A deploy request is recorded (the application `syncing`, the request current) before its
execution starts; a crash between the two, or a start that failed, leaves a request with no
execution. After a grace period the sweeper starts that execution (its name is the request id,
so a start that did happen meanwhile is a no-op). An execution that ended without its result
being written ends the application `out_of_sync` through the interpreter. A removal whose
execution never started is started again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from ferry.aws.executions import deploy_execution_arn, execution_status, undeploy_execution_arn
from ferry.deploy.removal import start_undeploy
from ferry.deploy.result import record_outcome
from ferry.deploy.start import deploy_input_for, start_deploy_execution
from ferry.domain.models import Application, ApplicationSyncStatus, Trigger, utcnow
from ferry.domain.outcomes import interpret_transport_error
from ferry.errors import FerryError, NotFound
from ferry.settings import get_settings
from ferry.store.applications import list_applications

logger = Logger(child=True)

ENDED_UNRECORDED = "its deploy ended without recording a result"


def _restart_removal(application: Application, request_id: str) -> str | None:
    try:
        execution_status(undeploy_execution_arn(request_id))
    except NotFound:
        start_undeploy(application, request_id)
        return "removal started again"
    return None


def _sweep_deploy(application: Application, request_id: str) -> str | None:
    try:
        status, _output = execution_status(deploy_execution_arn(request_id))
    except NotFound:
        start_deploy_execution(
            deploy_input_for(
                application,
                request_id,
                application.current_trigger or Trigger.MANUAL,
                actor="ferry (the deploy had not started)",
            )
        )
        return "deploy started again"
    if status == "RUNNING":
        return None
    record_outcome(application.id, request_id, interpret_transport_error(ENDED_UNRECORDED))
    return "ended out_of_sync"


def sweep_applications(now: datetime | None = None) -> dict[str, str]:
    """One pass; returns what was done, per application id."""
    now = now or utcnow()
    grace = timedelta(seconds=get_settings().deploy_start_grace_seconds)
    done: dict[str, str] = {}
    for application in list_applications():
        if now - application.updated_at < grace:
            continue  # its start may still be on the way
        request_id = application.current_request_id
        try:
            if application.removal_request_id is not None:
                outcome = _restart_removal(application, application.removal_request_id)
            elif request_id and application.sync_status is ApplicationSyncStatus.SYNCING:
                outcome = _sweep_deploy(application, request_id)
            else:
                continue
        except FerryError:
            logger.exception("sweep failed", extra={"application_id": application.id})
            continue
        if outcome is not None:
            logger.warning(outcome, extra={"application_id": application.id, "request": request_id})
            done[application.id] = outcome
    return done
