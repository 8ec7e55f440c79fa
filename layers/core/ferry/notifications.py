"""Notification targets: apprise URLs, sent through the SSRF-safe outbound path.

A failing target never fails what it reports on: its last status is recorded on the target.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from ferry.errors import FerryError, InvalidInput
from ferry.feed import announce, application_path, notification_path
from ferry.outbound.notify import NotificationResult, send_notification, validate_notification_url
from ferry.store.applications import list_applications, redefine_application
from ferry.store.notifications import (
    NotificationTarget,
    create_target,
    delete_target,
    get_target,
    get_target_url,
    record_send,
    update_target,
)

logger = Logger(child=True)


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("notification target name must not be empty")
    return name


def add_target(name: str, url: str) -> NotificationTarget:
    target = create_target(_clean_name(name), url.strip(), validate_notification_url(url.strip()))
    announce(notification_path(target.id), "notification.created")
    return target


def change_target(
    target_id: str, *, name: str | None = None, url: str | None = None
) -> NotificationTarget:
    get_target(target_id)
    target = update_target(
        target_id,
        name=_clean_name(name) if name is not None else None,
        url=url.strip() if url is not None else None,
        display_url=validate_notification_url(url.strip()) if url is not None else None,
    )
    announce(notification_path(target_id), "notification.updated")
    return target


def remove_target(target_id: str) -> None:
    """Delete a target and detach it from every application."""
    get_target(target_id)
    for application in list_applications():
        if target_id in application.notification_ids:
            redefine_application(
                application.id,
                {"notification_ids": [t for t in application.notification_ids if t != target_id]},
            )
            announce(application_path(application.id), "application.updated")
    delete_target(target_id)
    announce(notification_path(target_id), "notification.deleted")


def send_to_target(target_id: str, title: str, body: str) -> NotificationResult:
    """Send one notification and record how it went on the target."""
    result = send_notification(get_target_url(target_id), title, body)
    try:
        record_send(target_id, ok=result.ok, error=result.error)
        announce(notification_path(target_id), "notification.sent", ok=result.ok)
    except FerryError:
        logger.exception("notification outcome not recorded", extra={"target_id": target_id})
    return result


def notify_targets(target_ids: list[str], title: str, body: str) -> None:
    """Send to every target; failures are recorded, never raised."""
    for target_id in target_ids:
        try:
            send_to_target(target_id, title, body)
        except FerryError:
            logger.exception("notification not sent", extra={"target_id": target_id})
