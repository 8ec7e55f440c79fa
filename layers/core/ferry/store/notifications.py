"""Notification targets (apprise URLs, stored encrypted; only a redacted form is ever shown)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from pynamodb.expressions.update import Action

from ferry.domain.models import new_id, utcnow
from ferry.errors import NotFound
from ferry.store.errors import translated
from ferry.store.tables import NotificationTargetRow


class NotificationTarget(BaseModel):
    id: str
    name: str
    display_url: str
    last_status: str | None = None
    last_error: str | None = None
    last_sent_at: datetime | None = None
    created_at: datetime


def _to_domain(row: NotificationTargetRow) -> NotificationTarget:
    return NotificationTarget(
        id=row.id,
        name=row.name,
        display_url=row.display_url,
        last_status=row.last_status,
        last_error=row.last_error,
        last_sent_at=row.last_sent_at,
        created_at=row.created_at,
    )


def create_target(name: str, url: str, display_url: str) -> NotificationTarget:
    row = NotificationTargetRow(
        id=new_id("ntf"), name=name, url=url, display_url=display_url, created_at=utcnow()
    )
    with translated(f"notification target {row.id}"):
        row.save(condition=NotificationTargetRow.id.does_not_exist())
    return _to_domain(row)


def get_target(target_id: str) -> NotificationTarget:
    with translated(f"notification target {target_id}"):
        return _to_domain(NotificationTargetRow.get(target_id))


def get_target_url(target_id: str) -> str:
    """The full apprise URL (with its secrets), for sending only."""
    with translated(f"notification target {target_id}"):
        return str(NotificationTargetRow.get(target_id).url)


def list_targets() -> list[NotificationTarget]:
    with translated("notification targets"):
        rows = list(NotificationTargetRow.scan())
    return sorted((_to_domain(r) for r in rows), key=lambda t: t.created_at)


def update_target(
    target_id: str,
    *,
    name: str | None = None,
    url: str | None = None,
    display_url: str | None = None,
) -> NotificationTarget:
    actions: list[Action] = []
    if name is not None:
        actions.append(NotificationTargetRow.name.set(name))
    if url is not None and display_url is not None:
        actions.append(NotificationTargetRow.url.set(url))
        actions.append(NotificationTargetRow.display_url.set(display_url))
    row = NotificationTargetRow(id=target_id)
    if actions:
        with translated(f"notification target {target_id}", on_condition=NotFound):
            row.update(actions=actions, condition=NotificationTargetRow.id.exists())
        return _to_domain(row)
    return get_target(target_id)


def record_send(target_id: str, *, ok: bool, error: str | None) -> None:
    """Keep the last send's outcome on the target."""
    actions: list[Action] = [
        NotificationTargetRow.last_status.set("ok" if ok else "failed"),
        NotificationTargetRow.last_sent_at.set(utcnow()),
        NotificationTargetRow.last_error.set(error)
        if error
        else NotificationTargetRow.last_error.remove(),
    ]
    with translated(f"notification target {target_id}", on_condition=NotFound):
        NotificationTargetRow(id=target_id).update(
            actions=actions, condition=NotificationTargetRow.id.exists()
        )


def delete_target(target_id: str) -> None:
    with translated(f"notification target {target_id}", on_condition=NotFound):
        NotificationTargetRow(id=target_id).delete(condition=NotificationTargetRow.id.exists())
