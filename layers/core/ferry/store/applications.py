"""Applications: rows ↔ domain."""

from __future__ import annotations

from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from ferry.domain.models import Application, new_id, utcnow
from ferry.errors import Conflict, NotFound
from ferry.store.errors import translated
from ferry.store.tables import ApplicationRow, row_values


def _to_domain(row: ApplicationRow) -> Application:
    return Application.model_validate(row_values(row))


def create_application(
    *, name: str, repository_id: str, agent_id: str, branch: str, path: str
) -> Application:
    now = utcnow()
    row = ApplicationRow(
        id=new_id("app"),
        name=name,
        repository_id=repository_id,
        agent_id=agent_id,
        branch=branch,
        path=path,
        created_at=now,
        updated_at=now,
    )
    with translated(f"application {row.id}"):
        row.save(condition=ApplicationRow.id.does_not_exist())
    return _to_domain(row)


def get_application(application_id: str) -> Application:
    with translated(f"application {application_id}"):
        return _to_domain(ApplicationRow.get(application_id, consistent_read=True))


def list_applications() -> list[Application]:
    with translated("applications"):
        rows = list(ApplicationRow.scan())
    return sorted((_to_domain(r) for r in rows), key=lambda a: a.created_at)


def list_repository_applications(repository_id: str) -> list[Application]:
    with translated(f"applications of repository {repository_id}"):
        rows = list(ApplicationRow.by_repository.query(repository_id))
    return sorted((_to_domain(r) for r in rows), key=lambda a: a.created_at)


def update_application(
    application_id: str, fields: dict[str, Any], *, if_request_id: str | None = None
) -> Application:
    """Set (or, for None values, remove) attributes; returns the row as written.

    With `if_request_id`, the write only happens while that deploy request is still the
    application's current one (a superseded deploy's late result cannot overwrite a newer one):
    otherwise Conflict.
    """
    if not fields:
        return get_application(application_id)
    attributes = ApplicationRow.get_attributes()
    actions: list[Action] = [ApplicationRow.updated_at.set(utcnow())]
    for name, value in fields.items():
        attribute = attributes[name]
        actions.append(attribute.remove() if value is None else attribute.set(value))
    condition: Condition = ApplicationRow.id.exists()
    if if_request_id is not None:
        condition &= ApplicationRow.current_request_id == if_request_id
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
        raise NotFound(f"application {application_id} not found") from None
    return _to_domain(row)
