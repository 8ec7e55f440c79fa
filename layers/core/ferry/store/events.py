"""Application events: the history a user reads with `ferry app history`."""

from __future__ import annotations

from pynamodb.expressions.update import Action

from ferry.domain.models import ApplicationEvent, EventStatus, utcnow
from ferry.errors import Conflict
from ferry.store.errors import translated
from ferry.store.tables import ApplicationEventRow, row_values


def _sort_key(event: ApplicationEvent) -> str:
    return f"{event.created_at.isoformat()}#{event.id}"


def add_event(event: ApplicationEvent) -> ApplicationEvent:
    """Append an event to its application's history."""
    row = ApplicationEventRow(sort_key=_sort_key(event), **event.model_dump(mode="python"))
    with translated(f"event of application {event.application_id}"):
        row.save()
    return event


def complete_event(
    application_id: str,
    request_id: str,
    status: EventStatus,
    *,
    error: str | None = None,
    message: str | None = None,
) -> bool:
    """Finish the running event of this request; False when there is none (duplicate or late)."""
    with translated(f"events of application {application_id}"):
        running = [
            row
            for row in ApplicationEventRow.query(
                application_id,
                filter_condition=(ApplicationEventRow.request_id == request_id)
                & (ApplicationEventRow.status == EventStatus.RUNNING.value),
                scan_index_forward=False,
            )
        ]
    if not running:
        return False
    row = running[0]
    actions: list[Action] = [
        ApplicationEventRow.status.set(status.value),
        ApplicationEventRow.finished_at.set(utcnow()),
    ]
    if error is not None:
        actions.append(ApplicationEventRow.error.set(error))
    if message is not None:
        actions.append(ApplicationEventRow.message.set(message))
    try:
        with translated(f"event {row.id}"):
            row.update(
                actions=actions,
                condition=ApplicationEventRow.status == EventStatus.RUNNING.value,
            )
    except Conflict:
        return False  # completed concurrently by a duplicate result
    return True


def list_events(application_id: str, limit: int = 50) -> list[ApplicationEvent]:
    """Newest first."""
    with translated(f"events of application {application_id}"):
        rows = ApplicationEventRow.query(application_id, scan_index_forward=False, limit=limit)
        return [ApplicationEvent.model_validate(row_values(r)) for r in rows]
