"""MarkInProgress, the deploy state machine's first task: the application goes `syncing` and the
agent's deploy request is built from what the application records: its compose file and its
bundle, inline when small, else through the bundle bucket (the agent's own prefix there)."""

from __future__ import annotations

import base64
from typing import Any

from ferry.aws.objects import bundle_bucket, put_object, request_key
from ferry.deploy.status import update_application_status
from ferry.domain.messages import BundleObject, BundleRef, DeployInput, DeployRequest
from ferry.domain.models import (
    Application,
    ApplicationEvent,
    ApplicationSyncStatus,
    EventStatus,
    EventType,
    Trigger,
    utcnow,
)
from ferry.errors import PermanentError
from ferry.settings import get_settings
from ferry.store.applications import get_application
from ferry.store.bundles import StoredBundle, archive_of, stored_bundle
from ferry.store.events import add_event, list_events

# SQS messages and Step Functions state hold 256 KiB: a request carrying its bundle inline stays
# below this, leaving room for the task token and the rest of the execution's state.
REQUEST_BUDGET_BYTES = 200 * 1024


def _has_running_event(application_id: str, request_id: str) -> bool:
    return any(
        e.request_id == request_id and e.status is EventStatus.RUNNING
        for e in list_events(application_id, limit=20)
    )


def running_event(deploy_input: DeployInput) -> ApplicationEvent:
    """The history's entry for a deploy under way (one per request, finished by its result)."""
    return ApplicationEvent(
        application_id=deploy_input.application_id,
        type=EventType.DEPLOYMENT,
        trigger=deploy_input.trigger,
        status=EventStatus.RUNNING,
        commit=deploy_input.commit,
        message=f"deploying {deploy_input.commit[:12]}"
        + (f" ({deploy_input.reason})" if deploy_input.reason else ""),
        request_id=deploy_input.request_id,
        actor=deploy_input.actor,
    )


def mark_in_progress(payload: dict[str, Any]) -> dict[str, Any]:
    """State-machine task: mark the application `syncing` and build the agent's deploy request.

    Returns {"request": <DeployRequest>, "marked_at": <ISO time>}; the time lets
    ApplyDeployResult tell a lapsed heartbeat from an overall timeout. A sync that marked the
    application itself hands its execution this already (`marked`), and the state machine
    skips this task.

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
    request = _request(deploy_input, application)  # PermanentError without a compose file
    # A Lambda retry may run this twice; the history keeps one running entry per request.
    if not _has_running_event(application.id, deploy_input.request_id):
        add_event(running_event(deploy_input))
    return marked(_with_bundle(request, application))


def marked(request: DeployRequest) -> dict[str, Any]:
    """What MarkInProgress hands on: the agent's request, and when it was marked."""
    return {"request": request.model_dump(mode="json"), "marked_at": utcnow().isoformat()}


def _request(deploy_input: DeployInput, application: Application) -> DeployRequest:
    if application.compose_file is None:
        raise PermanentError(f"application {application.id} has no compose file recorded")
    return DeployRequest(
        request_id=deploy_input.request_id,
        application_id=application.id,
        application_name=application.name,
        project_name=application.project_name,
        commit=deploy_input.commit,
        compose_path=application.path,
        compose_file=application.compose_file,
        heartbeat_seconds=deploy_input.heartbeat_seconds,
        # An image update exists to run the new images: it must pull them, whoever restarts it.
        pull=deploy_input.trigger is Trigger.IMAGE_UPDATE,
    )


def inline_request(
    deploy_input: DeployInput, application: Application, stored: StoredBundle
) -> DeployRequest | None:
    """The agent's request with `stored` inline, built by whoever just recorded the application
    (a sync); None when the bundle does not travel inline (MarkInProgress then puts it where
    the agent reads it)."""
    if stored.archive is None:
        return None
    return _inline(_request(deploy_input, application), stored, stored.archive)


def _ref(stored: StoredBundle, archive: bytes) -> BundleRef:
    return BundleRef(
        digest=stored.digest,
        root=stored.root,
        files=len(stored.files),
        size=stored.size,
        archive_size=len(archive),
    )


def _inline(request: DeployRequest, stored: StoredBundle, archive: bytes) -> DeployRequest | None:
    if len(archive) > get_settings().bundle_inline_max_bytes:
        return None
    ref = _ref(stored, archive)
    inline = request.model_copy(
        update={"bundle": ref.model_copy(update={"inline": base64.b64encode(archive).decode()})}
    )
    return inline if len(inline.model_dump_json()) <= REQUEST_BUDGET_BYTES else None


def _with_bundle(request: DeployRequest, application: Application) -> DeployRequest:
    """The request with the application's bundle: inline while the archive is at most
    FERRY_BUNDLE_INLINE_MAX_BYTES and the request stays within REQUEST_BUDGET_BYTES, else put
    where the agent's session may read it (`requests/<agent id>/<request id>.tar.gz`)."""
    stored = stored_bundle(application.id)
    if stored is None:
        return request  # recorded by an earlier version: the compose file alone
    archive = archive_of(stored)
    inline = _inline(request, stored, archive)
    if inline is not None:
        return inline
    key = request_key(application.agent_id, request.request_id)
    put_object(key, archive)
    located = _ref(stored, archive).model_copy(
        update={"object": BundleObject(bucket=bundle_bucket(), key=key)}
    )
    return request.model_copy(update={"bundle": located})
