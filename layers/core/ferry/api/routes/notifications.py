from __future__ import annotations

from fastapi import APIRouter, Response, status

from ferry.api.schemas import (
    NotificationIn,
    NotificationOut,
    NotificationPatch,
    NotificationTestResult,
)
from ferry.deploy.notify import send_to_target
from ferry.manage.notifications import add_target, change_target, remove_target
from ferry.store.notifications import NotificationTarget, get_target, list_targets

router = APIRouter(prefix="/notifications", tags=["notifications"])


def to_out(target: NotificationTarget) -> NotificationOut:
    return NotificationOut(**target.model_dump())


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: NotificationIn) -> NotificationOut:
    """Add a target (an apprise URL). Attach it to applications with their `notification_ids`."""
    return to_out(add_target(body.name, body.url))


@router.get("")
def list_all() -> list[NotificationOut]:
    return [to_out(t) for t in list_targets()]


@router.get("/{target_id}")
def get_one(target_id: str) -> NotificationOut:
    return to_out(get_target(target_id))


@router.patch("/{target_id}")
def update(target_id: str, body: NotificationPatch) -> NotificationOut:
    return to_out(change_target(target_id, name=body.name, url=body.url))


@router.delete("/{target_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(target_id: str) -> Response:
    """Delete a target; it is detached from every application."""
    remove_target(target_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{target_id}/test")
def test(target_id: str) -> NotificationTestResult:
    """Send a test notification now; the answer (and the target's last status) says how it went."""
    result = send_to_target(target_id, "Ferry test notification", "If you read this, it works.")
    return NotificationTestResult(ok=result.ok, error=result.error)
