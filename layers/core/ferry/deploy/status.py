"""The single chokepoint for application status writes.

Every change to an application's sync_status, health_status, last_sync_error or deployed commit
goes through `update_application_status`: it writes the row and announces exactly one change on
the live feed, also when the write fails (the announcement then says so).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from ferry.store.applications import (
    NumberedWrite,
    get_application,
    update_application,
    update_application_numbering_event,
    update_applications_numbering_events,
)
from ferry.store.changes import change_rows
from ferry.store.events import add_numbered_event, add_numbered_events
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
    events: Sequence[ApplicationEvent] = (),
) -> Application:
    """Write `changes` (None removes a field) to the application and return it as written.

    `if_request_id` makes the write conditional on that deploy request still being current
    (Conflict otherwise), so a superseded deploy can never overwrite a newer one.
    `unless_removing` refuses (Conflict) once a delete was accepted: starting a deploy says so.
    `event` (and `events`, in order) are added to the application's history once the write
    succeeded (not when it failed): their numbers are taken by the same write, and they are
    written in one batch with the write's announcement, so a status change and its history
    entries cost three round trips.
    """
    history = ([event] if event is not None else []) + list(events)
    _as_stored(changes)
    path = application_path(application_id)
    try:
        if not history:
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
                count=len(history),
            )
    except FerryError as exc:
        announce(path, "application.status", ok=False, detail=f"status write failed: {exc}")
        raise
    if not history:
        announce(path, "application.status")
    else:
        _add_announced_events(_numbered(history, seq), [path])
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


def _as_stored(changes: dict[str, Any]) -> None:
    for name, enum in _STATUS_ENUMS.items():
        if name in changes and changes[name] is not None:
            changes[name] = enum(changes[name]).value


def _numbered(history: list[ApplicationEvent], last: int) -> list[tuple[ApplicationEvent, int]]:
    """The events numbered in order, up to `last` (the number the write took last)."""
    first = last - len(history) + 1
    return [(e, first + offset) for offset, e in enumerate(history)]


def _add_announced_events(numbered: list[tuple[ApplicationEvent, int]], paths: list[str]) -> None:
    try:
        add_numbered_events(numbered, change_rows(paths, "application.status"))
    except FerryError:
        # The announcement must never cost the change its history entry: each on its own.
        logger.exception("events and announcements not written together", extra={"paths": paths})
        for event, seq in numbered:
            add_numbered_event(event, seq)
        for path in paths:
            announce(path, "application.status")


@dataclass
class StatusWrite:
    """One application's part of `update_applications_status`: `application` as read (its
    history's number then: `events_seq`), the `changes` and `events` as for
    `update_application_status`."""

    application: Application
    events_seq: int
    changes: dict[str, Any]
    events: list[ApplicationEvent] = field(default_factory=list)
    unless_removing: bool = False
    # Changes made only by the write made together, and only while `expected` still holds
    # what was read (a deploy slot found free is taken this way): a write made on its own
    # leaves them out.
    claims: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)
    # Asked of the row as it is now when it changed since it was read, before the write is made
    # on its own: another sync may have started the same deploy meanwhile. False: no write.
    still_wanted: Callable[[Application], bool] | None = None


@dataclass(frozen=True)
class Written:
    """What became of one `StatusWrite`: the application as written (and whether its `claims`
    were made), the error that refused it, or (`unwanted`) the row as it is now when the write's
    `still_wanted` said no."""

    application: Application | None = None
    claimed: bool = False
    error: FerryError | None = None
    unwanted: Application | None = None


def update_applications_status(writes: Sequence[StatusWrite]) -> list[Written]:
    """`update_application_status` for many applications at once (a sync batch): the rows in
    transactions of 25, their history entries and announcements in batches of 25, so what
    costs three round trips an application costs a few a batch. Per write, the application as
    written or the error that refused it (Conflict once a delete was accepted, with
    `unless_removing`). A write whose row changed since it was read (its history, or what
    `expected` names) is written on its own, as `update_application_status` does, without its
    claims, once its `still_wanted` (if any) says so of the row as it is now."""
    for write in writes:
        _as_stored(write.changes)
    done = update_applications_numbering_events(
        [
            NumberedWrite(
                application_id=w.application.id,
                fields={**w.changes, **w.claims},
                events_seq=w.events_seq,
                count=len(w.events),
                unless_removing=w.unless_removing,
                expected=w.expected,
            )
            for w in writes
        ]
    )
    results: list[Written] = []
    numbered: list[tuple[ApplicationEvent, int]] = []
    paths: list[str] = []
    for write, written in zip(writes, done, strict=True):
        if not written:
            if write.still_wanted is not None:
                try:
                    current = get_application(write.application.id)
                except FerryError as exc:
                    results.append(Written(error=exc))
                    continue
                if not write.still_wanted(current):
                    results.append(Written(unwanted=current))
                    continue
            try:
                alone = update_application_status(
                    write.application.id,
                    write.changes,
                    unless_removing=write.unless_removing,
                    events=write.events,
                )
                results.append(Written(application=alone))
            except FerryError as exc:
                results.append(Written(error=exc))
            continue
        results.append(
            Written(application=_as_written(write.application, write.changes), claimed=True)
        )
        numbered.extend(_numbered(write.events, write.events_seq + len(write.events)))
        paths.append(application_path(write.application.id))
    if paths:
        _add_announced_events(numbered, paths)
    logger.info(
        "application statuses written",
        extra={"written": len(paths), "alone": len(writes) - len(paths)},
    )
    return results


def _as_written(application: Application, changes: dict[str, Any]) -> Application:
    return Application.model_validate({**application.model_dump(), **changes})
