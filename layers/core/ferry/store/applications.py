"""Applications: rows ↔ domain, with names unique per agent through guard items."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from ferry.domain.models import Application, new_id, utcnow
from ferry.domain.naming import compose_project_name
from ferry.errors import Conflict, FerryError, NotFound, TransientError
from ferry.security.crypto import get_keyring
from ferry.store.errors import translated
from ferry.store.guards import (
    Guard,
    application_guards,
    put_guards,
    release_guards,
    stored_application_guards,
    taken_by_other,
)
from ferry.store.tables import ApplicationRow, row_values, transaction

# Fields that define what an application is (and so touch its guards); everything else is state.
_DEFINITION = (
    "name",
    "agent_id",
    "branch",
    "path",
    "root",
    "repository_id",
    "notification_ids",
    "image_updates",
    "self_heal",
)


# The bundle's content stays in the store: store/bundles.py reads it when it is needed.
_BUNDLE_CONTENT = frozenset({"bundle_files", "bundle_archive", "bundle_root"})


def _to_domain(row: ApplicationRow) -> Application:
    values = row_values(row)
    return Application.model_validate(
        {name: value for name, value in values.items() if name not in _BUNDLE_CONTENT}
    )


def _conflict(guards: tuple[Any, ...], owner_id: str, agent_id: str, exc: Exception) -> Conflict:
    taken = taken_by_other(guards, owner_id)
    if taken is not None:
        return Conflict(f"{taken.what} already exists on agent {agent_id}")
    return Conflict(f"application {owner_id} changed concurrently; try again: {exc}")


def create_application(
    *,
    name: str,
    repository_id: str,
    agent_id: str,
    branch: str,
    path: str,
    root: str | None = None,
    notification_ids: list[str] | None = None,
    image_updates: str = "off",
    self_heal: bool = False,
) -> Application:
    """Store a new application; Conflict when its name or project is taken on that agent."""
    now = utcnow()
    keyring = get_keyring()
    project = compose_project_name(name)
    guards = application_guards(name, agent_id, project)
    row = ApplicationRow(
        id=new_id("app"),
        name=name,
        name_hash=keyring.name_hash(name),
        project_name=project,
        project_hash=keyring.name_hash(project),
        repository_id=repository_id,
        agent_id=agent_id,
        branch=branch,
        path=path,
        root=root,
        notification_ids=notification_ids or [],
        image_updates=image_updates,
        self_heal=self_heal,
        created_at=now,
        updated_at=now,
    )
    try:
        with transaction() as write:
            write.save(row, condition=ApplicationRow.id.does_not_exist())
            put_guards(write, guards, row.id)
    except TransactWriteError as exc:
        if exc.cause_response_code == "TransactionCanceledException":
            raise _conflict(guards, row.id, agent_id, exc) from exc
        raise TransientError(f"could not store the application: {exc}") from exc
    return _to_domain(row)


def get_application(application_id: str) -> Application:
    with translated(f"application {application_id}"):
        return _to_domain(ApplicationRow.get(application_id, consistent_read=True))


@dataclass(frozen=True)
class LoadedApplication:
    """An application as one batch read found it: with its history's number so far (a write
    numbering its events is conditional on it) and the row itself (its bundle's fields)."""

    application: Application
    events_seq: int
    row: ApplicationRow


def load_applications(application_ids: Sequence[str]) -> dict[str, LoadedApplication]:
    """Read many applications in batches of 100 (consistent reads); ids that are gone are
    missing from the answer."""
    with translated("applications"):
        rows = list(ApplicationRow.batch_get(list(dict.fromkeys(application_ids)), True))
    return loaded_from_rows(rows)


def loaded_from_rows(rows: Iterable[ApplicationRow]) -> dict[str, LoadedApplication]:
    """Rows read together (by `load_applications` or with other tables' rows), by id."""
    return {
        row.id: LoadedApplication(_to_domain(row), int(row.events_seq or 0), row) for row in rows
    }


def list_applications() -> list[Application]:
    with translated("applications"):
        rows = list(ApplicationRow.scan())
    return sorted((_to_domain(r) for r in rows), key=lambda a: a.created_at)


def list_repository_applications(repository_id: str) -> list[Application]:
    with translated(f"applications of repository {repository_id}"):
        rows = list(ApplicationRow.by_repository.query(repository_id))
    return sorted((_to_domain(r) for r in rows), key=lambda a: a.created_at)


def list_agent_applications(agent_id: str) -> list[Application]:
    return [a for a in list_applications() if a.agent_id == agent_id]


def _stored_guards(application_id: str) -> tuple[Guard, Guard]:
    """The guards the row holds, as recorded on it (NotFound when there is no row)."""
    with translated(f"application {application_id}"):
        row = ApplicationRow.get(
            application_id,
            consistent_read=True,
            attributes_to_get=["agent_id", "name_hash", "project_hash"],
        )
    return stored_application_guards(row.agent_id, row.name_hash, row.project_hash)


def redefine_application(application_id: str, changes: dict[str, Any]) -> Application:
    """Change what an application is (name, agent, branch, path, ...), moving its guards along.

    The old guards are released and the new ones claimed in the same transaction as the row, so
    a rename can neither leave a name claimed by nobody nor take one someone else holds.
    """
    unknown = set(changes) - set(_DEFINITION)
    if unknown:
        raise ValueError(f"not definition fields: {sorted(unknown)}")
    current = get_application(application_id)
    old_guards = _stored_guards(application_id)
    name = changes.get("name", current.name)
    agent_id = changes.get("agent_id", current.agent_id)
    new_guards = application_guards(name, agent_id, current.project_name)
    keyring = get_keyring()
    actions: list[Action] = [ApplicationRow.updated_at.set(utcnow())]
    for field, value in changes.items():
        attribute = ApplicationRow.get_attributes()[field]
        actions.append(attribute.remove() if value is None else attribute.set(value))
    if new_guards != old_guards:
        actions.append(ApplicationRow.name_hash.set(keyring.name_hash(name)))
        # Records from before the project was stored keep the one they run as.
        actions.append(ApplicationRow.project_name.set(current.project_name))
        actions.append(ApplicationRow.project_hash.set(keyring.name_hash(current.project_name)))
    try:
        with transaction() as write:
            write.update(
                ApplicationRow(id=application_id),
                actions=actions,
                condition=ApplicationRow.id.exists(),
            )
            if new_guards != old_guards:
                stale = tuple(g for g in old_guards if g not in new_guards)
                release_guards(write, stale, application_id)
                put_guards(write, new_guards, application_id)
    except TransactWriteError as exc:
        if exc.cause_response_code == "TransactionCanceledException":
            get_application(application_id)  # NotFound when it is gone
            raise _conflict(new_guards, application_id, agent_id, exc) from exc
        raise TransientError(f"could not change the application: {exc}") from exc
    return get_application(application_id)


def delete_application(application_id: str) -> None:
    """Remove the row and its guards together."""
    stored = _stored_guards(application_id)
    try:
        with transaction() as write:
            write.delete(ApplicationRow(id=application_id), condition=ApplicationRow.id.exists())
            release_guards(write, stored, application_id)
    except TransactWriteError as exc:
        if exc.cause_response_code == "TransactionCanceledException":
            raise NotFound(f"application {application_id} not found") from exc
        raise TransientError(f"could not delete the application: {exc}") from exc


def update_application(
    application_id: str,
    fields: dict[str, Any],
    *,
    if_request_id: str | None = None,
    unless_removing: bool = False,
) -> Application:
    """Set (or, for None values, remove) state attributes; returns the row as written.

    With `if_request_id`, the write only happens while that deploy request is still the
    application's current one (a superseded deploy's late result cannot overwrite a newer one):
    otherwise Conflict. With `unless_removing`, only while no delete has been accepted (a deploy
    must never start once the application is being removed): otherwise Conflict.
    """
    if not fields:
        return get_application(application_id)
    row = _update_row(
        application_id, fields, if_request_id=if_request_id, unless_removing=unless_removing
    )
    return _to_domain(row)


def update_application_numbering_event(
    application_id: str,
    fields: dict[str, Any],
    *,
    if_request_id: str | None = None,
    unless_removing: bool = False,
    count: int = 1,
) -> tuple[Application, int]:
    """`update_application` that also takes the next `count` numbers of the application's
    history in the same write (one round trip where two were made); returns the row and the
    last number taken."""
    row = _update_row(
        application_id,
        fields,
        if_request_id=if_request_id,
        unless_removing=unless_removing,
        number_events=count,
    )
    return _to_domain(row), int(row.events_seq)


def _update_row(
    application_id: str,
    fields: dict[str, Any],
    *,
    if_request_id: str | None,
    unless_removing: bool,
    number_events: int = 0,
) -> ApplicationRow:
    if set(fields) & {"name", "agent_id"}:
        raise ValueError("name and agent_id change through redefine_application (guards)")
    attributes = ApplicationRow.get_attributes()
    actions: list[Action] = [ApplicationRow.updated_at.set(utcnow())]
    if number_events:
        actions.append(ApplicationRow.events_seq.add(number_events))
    for name, value in fields.items():
        attribute = attributes[name]
        actions.append(attribute.remove() if value is None else attribute.set(value))
    condition: Condition = ApplicationRow.id.exists()
    if if_request_id is not None:
        condition &= ApplicationRow.current_request_id == if_request_id
    if unless_removing:
        condition &= ApplicationRow.removal_request_id.does_not_exist()
    row = ApplicationRow(id=application_id)
    try:
        with translated(f"application {application_id}"):
            row.update(actions=actions, condition=condition)
    except Conflict:
        current = get_application(application_id)  # NotFound when the row is gone
        if if_request_id is not None and current.current_request_id != if_request_id:
            raise Conflict(
                f"deploy {if_request_id} is no longer current for application {application_id}"
            ) from None
        if unless_removing and current.removal_request_id is not None:
            raise Conflict(f"application {application_id} is being removed") from None
        raise NotFound(f"application {application_id} not found") from None
    return row


@dataclass(frozen=True)
class NumberedWrite:
    """One application's part of `update_applications_numbering_events`: `fields` as for
    `update_application`, taking the history's next `count` numbers after `events_seq` (the
    number read with the row)."""

    application_id: str
    fields: dict[str, Any]
    events_seq: int
    count: int
    unless_removing: bool = False
    # Fields that must still hold what was read (None: absent) for the write to happen.
    expected: dict[str, Any] = dataclasses.field(default_factory=dict)


def update_applications_numbering_events(writes: Sequence[NumberedWrite]) -> list[bool]:
    """Write many applications, each write conditional on its row's history number being the
    one read (so the numbers it takes are its own), with `unless_removing` on no delete having
    been accepted, and on the `expected` fields. True per write that happened; a False one did
    not (a condition failed, or the store did not answer): the caller writes it on its own.

    One conditional UpdateItem each, not a transaction: the writes need no atomicity between
    them, and a transaction costs twice the write units on AWS."""
    attributes = ApplicationRow.get_attributes()
    now = utcnow()
    done: list[bool] = []
    for item in writes:
        if set(item.fields) & {"name", "agent_id"}:
            raise ValueError("name and agent_id change through redefine_application (guards)")
        actions: list[Action] = [
            ApplicationRow.updated_at.set(now),
            ApplicationRow.events_seq.set(item.events_seq + item.count),
        ]
        for name, value in item.fields.items():
            attribute = attributes[name]
            actions.append(attribute.remove() if value is None else attribute.set(value))
        numbered: Condition = ApplicationRow.events_seq == item.events_seq
        if item.events_seq == 0:
            numbered |= ApplicationRow.events_seq.does_not_exist()
        condition: Condition = ApplicationRow.id.exists() & numbered
        if item.unless_removing:
            condition &= ApplicationRow.removal_request_id.does_not_exist()
        for name, value in item.expected.items():
            attribute = attributes[name]
            condition &= attribute.does_not_exist() if value is None else attribute == value
        try:
            with translated(f"application {item.application_id}"):
                # Nothing is read back: the caller knows what it wrote (the row holds the
                # bundle, which is not worth a round trip back).
                ApplicationRow._get_connection().update_item(
                    item.application_id, actions=actions, condition=condition
                )
        except FerryError:  # a failed condition, or an outage: the write on its own says which
            done.append(False)
            continue
        done.append(True)
    return done


def swap_application_field(
    application_id: str, field: str, expected: Any, value: Any, **also: Any
) -> bool:
    """Set `field` to `value` (and the `also` fields) only while it still holds `expected` (None:
    absent; an empty list: empty or absent); False when another writer changed it first.
    Automation state (the image-redeploy debounce, the flap guard's heals) is claimed this way,
    so two reports at once act once."""
    attributes = ApplicationRow.get_attributes()
    actions: list[Action] = [ApplicationRow.updated_at.set(utcnow())]
    for name, new in {field: value, **also}.items():
        actions.append(attributes[name].remove() if new is None else attributes[name].set(new))
    attribute = attributes[field]
    if expected is None:
        held: Condition = attribute.does_not_exist()
    elif expected == []:
        held = attribute.does_not_exist() | (attribute == [])  # rows older than the field
    else:
        held = attribute == expected
    condition: Condition = ApplicationRow.id.exists() & held
    try:
        with translated(f"application {application_id}"):
            ApplicationRow(id=application_id).update(actions=actions, condition=condition)
    except Conflict:
        get_application(application_id)  # NotFound when it is gone
        return False
    return True


def next_event_number(application_id: str) -> int:
    """Allocate the next number in the application's history (atomic)."""
    row = ApplicationRow(id=application_id)
    with translated(f"application {application_id}", on_condition=NotFound):
        row.update(actions=[ApplicationRow.events_seq.add(1)], condition=ApplicationRow.id.exists())
    return int(row.events_seq)


def free_deploy_slot(row: ApplicationRow, now: datetime) -> bool:
    """Whether the row, as read, leaves the deploy slot to whoever takes it (nobody holds it, or
    its holder's lease ran out)."""
    return row.deploy_slot is None or (
        row.deploy_slot_until is not None and row.deploy_slot_until < now
    )


def acquire_deploy_slot(application_id: str, request_id: str, lease: timedelta) -> bool:
    """Take the application's deploy slot for `request_id` (or keep it) while that request is
    the application's current one; False while another request holds an unexpired lease, or
    once `request_id` is no longer current (the caller reads the row to tell which). A
    conditional write: two requests never both hold it."""
    now = utcnow()
    row = ApplicationRow(id=application_id)
    try:
        with translated(f"application {application_id}"):
            row.update(
                actions=[
                    ApplicationRow.deploy_slot.set(request_id),
                    ApplicationRow.deploy_slot_until.set(now + lease),
                ],
                condition=(ApplicationRow.current_request_id == request_id)
                & (
                    ApplicationRow.deploy_slot.does_not_exist()
                    | (ApplicationRow.deploy_slot == request_id)
                    | (ApplicationRow.deploy_slot_until < now)
                ),
            )
    except Conflict:
        return False
    return True


def release_deploy_slot(application_id: str, request_id: str) -> None:
    """Give the slot up if `request_id` holds it (anything else is left alone)."""
    try:
        with translated(f"application {application_id}"):
            ApplicationRow(id=application_id).update(
                actions=[
                    ApplicationRow.deploy_slot.remove(),
                    ApplicationRow.deploy_slot_until.remove(),
                ],
                condition=ApplicationRow.deploy_slot == request_id,
            )
    except Conflict:
        return


def clear_deploy_slot(application_id: str) -> None:
    """Free the application's deploy slot whoever holds it: only for when no execution can be
    holding it any more (the local stack after a restart)."""
    try:
        with translated(f"application {application_id}", on_condition=NotFound):
            ApplicationRow(id=application_id).update(
                actions=[
                    ApplicationRow.deploy_slot.remove(),
                    ApplicationRow.deploy_slot_until.remove(),
                ],
                condition=ApplicationRow.id.exists() & ApplicationRow.deploy_slot.exists(),
            )
    except NotFound:
        return  # no slot held (or no application): nothing to free
