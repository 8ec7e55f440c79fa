"""The single chokepoint for application status writes.

Every change to an application's sync_status, health_status, last_sync_error or deployed commit
goes through `update_application_status`: it writes the row and announces exactly one change on
the live feed, also when the write fails (the announcement then says so).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from ferry.domain.models import Application, ApplicationSyncStatus, HealthStatus, Trigger
from ferry.errors import FerryError
from ferry.store.applications import update_application
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
) -> Application:
    """Write `changes` (None removes a field) to the application and return it as written.

    `if_request_id` makes the write conditional on that deploy request still being current
    (Conflict otherwise), so a superseded deploy can never overwrite a newer one.
    `unless_removing` refuses (Conflict) once a delete was accepted: starting a deploy says so.
    """
    for field, enum in _STATUS_ENUMS.items():
        if field in changes and changes[field] is not None:
            changes[field] = enum(changes[field]).value
    try:
        application = update_application(
            application_id, changes, if_request_id=if_request_id, unless_removing=unless_removing
        )
    except FerryError as exc:
        announce(
            application_path(application_id),
            "application.status",
            ok=False,
            detail=f"status write failed: {exc}",
        )
        raise
    announce(application_path(application_id), "application.status")
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
