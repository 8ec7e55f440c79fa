"""Notification targets as the API offers them: apprise URLs, validated when stored (sending
them is `ferry.deploy.notify`'s)."""

from __future__ import annotations

from ferry.errors import InvalidInput
from ferry.outbound.notify import validate_notification_url
from ferry.store.applications import list_applications, redefine_application
from ferry.store.feed import announce, application_path, notification_path
from ferry.store.notifications import (
    NotificationTarget,
    create_target,
    delete_target,
    get_target,
    update_target,
)


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
