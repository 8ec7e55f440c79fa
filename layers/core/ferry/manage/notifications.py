"""Notification targets as the API offers them: apprise URLs, validated when stored (sending
them is `ferry.deploy.notify`'s)."""

from __future__ import annotations

from ferry.domain.validation import check_url, clean_name
from ferry.store.applications import list_applications, redefine_application
from ferry.store.feed import announce, application_path, notification_path
from ferry.store.notifications import (
    NotificationTarget,
    create_target,
    delete_target,
    get_target,
    update_target,
)


def validate_notification_url(url: str) -> str:
    """The URL's redacted form, or InvalidInput. apprise is imported here, not with the API: only
    storing a target needs it."""
    from ferry.outbound.notify import validate_notification_url as validate

    return validate(url)


def _clean_name(name: str) -> str:
    return clean_name(name, "notification target name")


def _checked_url(url: str) -> tuple[str, str]:
    """The URL to store and its redacted form; InvalidInput (never echoing the URL, which holds
    secrets) when it is too long, unprintable or not one apprise can send to."""
    url = check_url(url)
    return url, validate_notification_url(url)


def add_target(name: str, url: str) -> NotificationTarget:
    name = _clean_name(name)
    url, display_url = _checked_url(url)
    target = create_target(name, url, display_url)
    announce(notification_path(target.id), "notification.created")
    return target


def change_target(
    target_id: str, *, name: str | None = None, url: str | None = None
) -> NotificationTarget:
    get_target(target_id)
    checked = _checked_url(url) if url is not None else (None, None)
    target = update_target(
        target_id,
        name=_clean_name(name) if name is not None else None,
        url=checked[0],
        display_url=checked[1],
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
