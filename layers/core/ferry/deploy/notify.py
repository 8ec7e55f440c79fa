"""Telling an application's notification targets how its deploy (or sync) ended.

Targets are apprise URLs sent through the SSRF-safe outbound path. A failing target never fails
what it reports on: its last status is recorded on the target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from ferry.domain.messages import DeployInput
from ferry.domain.models import Application, Trigger
from ferry.domain.outcomes import OutcomeKind
from ferry.errors import FerryError, NotFound
from ferry.store.applications import get_application
from ferry.store.feed import announce, notification_path
from ferry.store.notifications import get_target_url, record_send

if TYPE_CHECKING:
    from ferry.outbound.notify import NotificationResult

logger = Logger(child=True)


def send_to_target(target_id: str, title: str, body: str) -> NotificationResult:
    """Send one notification and record how it went on the target."""
    # apprise, requests and httpx load here, on the first send: the deploy tasks that share this
    # module's handler file (and the API) never send.
    from ferry.outbound.notify import send_notification

    result = send_notification(get_target_url(target_id), title, body)
    try:
        record_send(target_id, ok=result.ok, error=result.error)
        announce(notification_path(target_id), "notification.sent", ok=result.ok)
    except FerryError:
        logger.exception("notification outcome not recorded", extra={"target_id": target_id})
    return result


def notify_targets(target_ids: list[str], title: str, body: str) -> None:
    """Send to every target; failures are recorded, never raised."""
    for target_id in target_ids:
        try:
            send_to_target(target_id, title, body)
        except FerryError:
            logger.exception("notification not sent", extra={"target_id": target_id})


# Deploys Ferry started on its own say so in the title, apart from those a push or a user asked.
_AUTOMATIC_CAUSES = {Trigger.IMAGE_UPDATE: "image update", Trigger.SELF_HEAL: "self-heal"}


def deploy_message(
    application: Application,
    commit: str,
    applied: dict[str, Any],
    trigger: Trigger | None = None,
) -> tuple[str, str]:
    """A notification's title and body for a deploy outcome (the title names an automatic
    deploy's cause)."""
    short = commit[:12]
    outcome = applied.get("outcome")
    error = applied.get("last_sync_error") or ""
    cause = _AUTOMATIC_CAUSES.get(trigger) if trigger is not None else None
    because = f" ({cause})" if cause else ""
    if outcome == OutcomeKind.SUCCEEDED.value:
        return (
            f"Ferry: {application.name} deployed{because}",
            f"{application.name} is running {short} ({applied.get('health_status')}).",
        )
    if outcome == OutcomeKind.FAILED.value:
        return (
            f"Ferry: {application.name} failed to deploy{because}",
            f"Deploying {short} failed: {error}",
        )
    return (
        f"Ferry: {application.name} deploy finished without a result{because}",
        f"Deploying {short} finished without a result: {error}",
    )


def notify_deploy_outcome(
    application_id: str, commit: str, applied: dict[str, Any], trigger: Trigger | None = None
) -> int:
    """Tell the application's targets what `record_outcome` wrote; returns how many were told.

    Superseded and deleted deploys (`applied` False) notify nobody.
    """
    if not applied.get("applied"):
        return 0
    try:
        application = get_application(application_id)
    except NotFound:
        return 0
    if not application.notification_ids:
        return 0
    title, body = deploy_message(application, commit, applied, trigger)
    notify_targets(application.notification_ids, title, body)
    return len(application.notification_ids)


def notify_outcome(payload: dict[str, Any]) -> dict[str, Any]:
    """State-machine task (Notify): tell the targets how the deploy ended."""
    # ApplyDeployResult's answer sits at $.applied.applied (its ResultSelector wraps it).
    applied = (payload.get("applied") or {}).get("applied") or {}
    if not applied.get("applied"):
        return {"notified": 0}
    deploy_input = DeployInput.model_validate(payload)
    return {
        "notified": notify_deploy_outcome(
            deploy_input.application_id, deploy_input.commit, applied, deploy_input.trigger
        )
    }
