"""Application events: the history a user reads with `ferry app history`.

Each event gets the next number of its application's history; keeping the newest 1000 is then
one delete of number N-1000 per new event, with no counting or scanning.
"""

from __future__ import annotations

from pynamodb.expressions.update import Action
from pynamodb.models import Model

from ferry.domain.models import ApplicationEvent, EventStatus, utcnow
from ferry.errors import Conflict, NotFound
from ferry.store.applications import next_event_number
from ferry.store.errors import translated
from ferry.store.tables import ApplicationEventRow, ChangeRow, batch_write, row_values

EVENTS_KEPT = 1000


def _sort_key(seq: int) -> str:
    return f"{seq:012d}"


def _to_domain(row: ApplicationEventRow) -> ApplicationEvent:
    return ApplicationEvent.model_validate({**row_values(row), "seq": int(row.sort_key)})


def add_event(event: ApplicationEvent) -> ApplicationEvent | None:
    """Append an event to its application's history; None when the application is gone."""
    try:
        seq = next_event_number(event.application_id)
    except NotFound:
        return None
    return add_numbered_event(event, seq)


def add_numbered_event(
    event: ApplicationEvent, seq: int, *, with_change: ChangeRow | None = None
) -> ApplicationEvent:
    """Write an event under the number `seq` (taken from its application's row), dropping the
    one that falls out of the kept history, and `with_change` (a change of the feed), in one
    round trip (a batch: none of them is conditional)."""
    return add_numbered_events([(event, seq)], [] if with_change is None else [with_change])[0]


# BatchWriteItem takes 25 items a call.
BATCH_ITEMS = 25


def add_numbered_events(
    numbered: list[tuple[ApplicationEvent, int]], changes: list[ChangeRow]
) -> list[ApplicationEvent]:
    """`add_numbered_event` for many events (of one or more applications) and the feed's
    `changes`, in batches of BATCH_ITEMS rows."""
    stored = [event.model_copy(update={"seq": seq}) for event, seq in numbered]
    puts: list[Model] = [
        ApplicationEventRow(sort_key=_sort_key(e.seq), **e.model_dump(exclude={"seq"}))
        for e in stored
    ]
    puts.extend(changes)
    dropped: list[Model] = [
        ApplicationEventRow(application_id=e.application_id, sort_key=_sort_key(seq - EVENTS_KEPT))
        for e, seq in numbered
        if seq > EVENTS_KEPT
    ]
    rows: list[tuple[bool, Model]] = [(True, r) for r in puts] + [(False, r) for r in dropped]
    what = ", ".join(sorted({e.application_id for e, _seq in numbered}))
    with translated(f"events of application {what}"):
        for start in range(0, len(rows), BATCH_ITEMS):
            chunk = rows[start : start + BATCH_ITEMS]
            batch_write(
                puts=[r for put, r in chunk if put], deletes=[r for put, r in chunk if not put]
            )
    return stored


def complete_event(
    application_id: str,
    request_id: str,
    status: EventStatus,
    *,
    error: str | None = None,
    message: str | None = None,
) -> bool:
    """Finish the running event of this request and application.

    False when there is none: a duplicate or late result changes nothing.
    """
    with translated(f"events of application {application_id}"):
        running = list(
            ApplicationEventRow.query(
                application_id,
                filter_condition=(ApplicationEventRow.request_id == request_id)
                & (ApplicationEventRow.status == EventStatus.RUNNING.value),
                scan_index_forward=False,
            )
        )
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


def list_events(
    application_id: str, limit: int = 50, before: int | None = None
) -> list[ApplicationEvent]:
    """Newest first; `before` continues a page (the `seq` of the last event seen)."""
    with translated(f"events of application {application_id}"):
        condition = ApplicationEventRow.sort_key < _sort_key(before) if before else None
        rows = ApplicationEventRow.query(
            application_id, condition, scan_index_forward=False, limit=limit
        )
        return [_to_domain(r) for r in rows]


def delete_events(application_id: str) -> None:
    """Forget an application's history (when the application is deleted)."""
    with (
        translated(f"events of application {application_id}"),
        ApplicationEventRow.batch_write() as batch,
    ):
        for row in ApplicationEventRow.query(
            application_id, attributes_to_get=["application_id", "sort_key"]
        ):
            batch.delete(row)
