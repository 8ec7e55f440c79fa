"""Starting a deploy request: one Step Functions execution per (application, commit, trigger).

The state machine (functions/statemachines/deploy.asl.json) runs MarkInProgress (`progress`) →
AcquireDeploySlot (`slot`) → DispatchToAgent (waits for the agent's task-token answer) →
ApplyDeployResult (`result`) → Notify (`notify`). A sync that already did what the first two
would do hands their results on in the input (`start_deploy_execution`), and they are skipped.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

from ferry.aws.executions import start_execution
from ferry.deploy.slot import ACQUIRED
from ferry.domain.messages import DeployInput
from ferry.domain.models import Application, Trigger
from ferry.errors import PermanentError
from ferry.settings import get_settings
from ferry.store.agents import get_agent

logger = Logger(child=True)

_EXECUTION_NAME_LIMIT = 80


def deploy_request_id(application_id: str, commit: str, job_id: str) -> str:
    """The deploy request's id and execution name: deterministic (application, commit and the
    sync job or redeploy that asked), so a duplicate start is a no-op."""
    return f"{application_id}-{commit[:12]}-{job_id}"[:_EXECUTION_NAME_LIMIT]


def sync_job_of(request_id: str) -> str | None:
    """The sync job a deploy request was started by (its id ends the request's name), or None
    for a request no sync job started (a redeploy, a rollback's own deploy)."""
    parts = request_id.split("-", 2)
    job_id = parts[2] if len(parts) == 3 else ""
    return job_id if job_id.startswith("job_") else None


def deploy_input_for(
    application: Application,
    request_id: str,
    trigger: Trigger,
    *,
    actor: str | None = None,
    reason: str | None = None,
    agent_queue_url: str | None = None,
) -> DeployInput:
    """The deploy execution's input for the application's desired commit (its target), for
    `start_deploy_execution`. The caller has already made `request_id` the application's
    current request (and marked it `syncing`, in the same write). `reason` (why an automatic
    deploy runs) goes into its history event; `agent_queue_url` is the application's agent's
    queue, when the caller read it already."""
    commit = application.desired_commit
    if commit is None:
        raise PermanentError(f"application {application.id} has no commit to deploy")
    message = (
        application.target_commit_message
        if application.target_commit
        else application.commit_message
    )
    settings = get_settings()
    if agent_queue_url is None:
        agent_queue_url = get_agent(application.agent_id).queue_url
    return DeployInput(
        application_id=application.id,
        request_id=request_id,
        commit=commit,
        commit_message=message,
        trigger=trigger,
        agent_queue_url=agent_queue_url,
        timeout_seconds=settings.deploy_timeout_seconds,
        heartbeat_seconds=settings.deploy_heartbeat_seconds,
        actor=actor,
        reason=reason,
    )


def start_deploy_execution(
    deploy_input: DeployInput, marked: dict[str, Any] | None = None, *, slot: bool = False
) -> None:
    """Start the execution named by the request id (a duplicate start is a no-op). `marked`
    is what MarkInProgress would hand on, from a caller that already marked the application
    `syncing`, wrote its running event and built the agent's request: the execution then
    skips that task (`dispatch` in its input). `slot`: that caller's write also took the
    deploy slot for this request, so the execution skips AcquireDeploySlot too."""
    document = deploy_input.model_dump(mode="json")
    if marked is not None:
        document["dispatch"] = marked
        if slot:
            document["slot"] = dict(ACQUIRED)
    if not start_execution(
        get_settings().deploy_state_machine_arn, deploy_input.request_id, json.dumps(document)
    ):
        logger.info("deploy already started", extra={"request_id": deploy_input.request_id})
