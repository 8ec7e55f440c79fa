"""Drift: the agent reports that what runs differs from what it deployed ("web stopped", "worker
missing", "web recreated by hand"), or no longer does.

The control plane records a `drift` event and marks the application `out_of_sync` with what
differs; an application that self-heals is redeployed at its recorded commit, within the flap
guard (domain/desired_state.py). A drift seen while a deploy is on its way, or while the
application is out of sync for another reason (a failed deploy), is recorded and left to that.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from ferry.deploy.notify import notify_targets
from ferry.deploy.status import update_application_status
from ferry.domain.desired_state import (
    HEAL_WINDOW,
    HEALS_ALLOWED,
    decide_heal,
    drift_error,
    is_drift_error,
)
from ferry.domain.messages import DriftReport
from ferry.domain.models import (
    Application,
    ApplicationEvent,
    ApplicationSyncStatus,
    EventStatus,
    EventType,
    Trigger,
    utcnow,
)
from ferry.errors import FerryError
from ferry.manage.applications import redeploy_application
from ferry.store.applications import swap_application_field
from ferry.store.events import add_event
from ferry.store.feed import announce, application_path

logger = Logger(child=True)

BACK_IN_SYNC = "back at the deployed state"


def record_drift(application: Application, report: DriftReport) -> None:
    """Apply its agent's drift report to an application (see the module's docstring)."""
    if application.removal_request_id is not None:
        return  # being removed: its containers are going anyway
    if report.differences:
        _drifted(application, report.differences)
    else:
        _back_in_sync(application)


def record_automatic(event: ApplicationEvent) -> None:
    """Add a history event of the host's own doing (drift, self-heal, image update) and say it
    on the live feed as `application.<cause>`, so `ferry watch` shows why the application
    changed."""
    add_event(event)
    said = event.error or event.message
    announce(
        application_path(event.application_id), f"application.{event.trigger.value}", detail=said
    )


def _event(application: Application, status: EventStatus, trigger: Trigger, **text: str) -> None:
    record_automatic(
        ApplicationEvent(
            application_id=application.id,
            type=EventType.DRIFT,
            trigger=trigger,
            status=status,
            commit=application.commit,
            finished_at=utcnow(),
            **text,
        )
    )


def _drifted(application: Application, differences: list[str]) -> None:
    error = drift_error(differences)
    what = ", ".join(differences)
    status = application.sync_status
    if status is ApplicationSyncStatus.OUT_OF_SYNC and application.last_sync_error == error:
        return  # already recorded (an agent restarted and reported it again)
    _event(application, EventStatus.FAILED, Trigger.DRIFT, error=what)
    if status is ApplicationSyncStatus.SYNCING or (
        status is ApplicationSyncStatus.OUT_OF_SYNC
        and not is_drift_error(application.last_sync_error)
    ):
        # A deploy on its way settles the host; a failed one already says why it is not synced.
        return
    update_application_status(
        application.id,
        {"sync_status": ApplicationSyncStatus.OUT_OF_SYNC, "last_sync_error": error},
    )
    if application.self_heal:
        _heal(application, what)
    elif application.notification_ids:
        notify_targets(
            application.notification_ids,
            f"Ferry: {application.name} drifted",
            f"{application.name} differs from what was deployed: {what}.",
        )


def _heal(application: Application, what: str) -> None:
    if application.self_heal_stopped_at is not None:
        return  # the flap guard stopped healing; its targets were told then
    now = utcnow()
    decision = decide_heal(application.self_heal_at, now)
    if not decision.heal:
        if swap_application_field(
            application.id, "self_heal_stopped_at", None, now, self_heal_at=decision.heals
        ):
            _stop_healing(application, what)
        return
    if not swap_application_field(
        application.id, "self_heal_at", application.self_heal_at, decision.heals
    ):
        return  # another report of the same drift is healing it
    try:
        redeploy_application(application.id, trigger=Trigger.SELF_HEAL, reason=f"healing {what}")
        announce(
            application_path(application.id),
            f"application.{Trigger.SELF_HEAL.value}",
            detail=f"redeploying: healing {what}",
        )
    except FerryError as exc:
        logger.warning(
            "self-heal not started", extra={"application_id": application.id, "error": str(exc)}
        )
        _event(application, EventStatus.FAILED, Trigger.SELF_HEAL, error=f"not healed: {exc}")


def _stop_healing(application: Application, what: str) -> None:
    minutes = int(HEAL_WINDOW.total_seconds() // 60)
    reason = (
        f"self-heal stopped: healed {HEALS_ALLOWED} times within {minutes} minutes and it "
        f"drifted again ({what}); `ferry app set {application.id} --self-heal` resumes it"
    )
    _event(application, EventStatus.FAILED, Trigger.SELF_HEAL, error=reason)
    if application.notification_ids:
        notify_targets(
            application.notification_ids,
            f"Ferry: {application.name} self-heal stopped",
            f"{application.name}: {reason}.",
        )


def _back_in_sync(application: Application) -> None:
    if not (
        application.sync_status is ApplicationSyncStatus.OUT_OF_SYNC
        and is_drift_error(application.last_sync_error)
    ):
        return  # nothing said it drifted (or a deploy has spoken since)
    update_application_status(
        application.id,
        {"sync_status": ApplicationSyncStatus.SYNCED, "last_sync_error": None},
    )
    _event(application, EventStatus.SUCCEEDED, Trigger.DRIFT, message=BACK_IN_SYNC)
