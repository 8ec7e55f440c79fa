"""The single chokepoint for application status writes.

Every change to an application's sync_status, health_status, last_sync_error or deployed commit
goes through `update_application_status`: it writes the row and announces exactly one change on
the live feed, also when the write fails (the announcement then says so).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from ferry.domain.models import (
    Application,
    ApplicationEvent,
    ApplicationSyncStatus,
    HealthStatus,
    Trigger,
)
from ferry.errors import FerryError
from ferry.store.applications import update_application, update_application_numbering_event
from ferry.store.changes import change_row
from ferry.store.events import add_numbered_event
from ferry.store.feed import announce, application_path

logger = Logger(child=True)

_STATUS_ENUMS = {
    "sync_status": ApplicationSyncStatus,
    "health_status": HealthStatus,
    "current_trigger": Trigger,
}


def update_application_status(
    application_id: str,
    changes: dict[str, Any],
    *,
    if_request_id: str | None = None,
    unless_removing: bool = False,
    event: ApplicationEvent | None = None,
) -> Application:
    """Write `changes` (None removes a field) to the application and return it as written.

    `if_request_id` makes the write conditional on that deploy request still being current
    (Conflict otherwise), so a superseded deploy can never overwrite a newer one.
    `unless_removing` refuses (Conflict) once a delete was accepted: starting a deploy says so.
    `event` is added to the application's history once the write succeeded (not when it
    failed): its number is taken by the same write, and it is written in one batch with the
    write's announcement, so a status change and its history entry cost three round trips.
    """
    for field, enum in _STATUS_ENUMS.items():
        if field in changes and changes[field] is not None:
            changes[field] = enum(changes[field]).value
    path = application_path(application_id)
    try:
        if event is None:
            application = update_application(
                application_id,
                changes,
                if_request_id=if_request_id,
                unless_removing=unless_removing,
            )
        else:
            application, seq = update_application_numbering_event(
                application_id,
                changes,
                if_request_id=if_request_id,
                unless_removing=unless_removing,
            )
    except FerryError as exc:
        announce(path, "application.status", ok=False, detail=f"status write failed: {exc}")
        raise
    if event is None:
        announce(path, "application.status")
    else:
        _add_announced_event(event, seq, path)
    logger.info(
        "application status written",
        extra={
            "application_id": application_id,
            "sync_status": application.sync_status,
            "health_status": application.health_status,
            "request_id": if_request_id,
        },
    )
    return application


def _add_announced_event(event: ApplicationEvent, seq: int, path: str) -> None:
    try:
        add_numbered_event(event, seq, with_change=change_row(path, "application.status"))
    except FerryError:
        # The announcement must never cost the change its history entry: each on its own.
        logger.exception("event and announcement not written together", extra={"path": path})
        add_numbered_event(event, seq)
        announce(path, "application.status")
