"""Registering repositories."""

from __future__ import annotations

from ferry.domain.models import Provider, Repository, SyncType
from ferry.errors import InvalidInput
from ferry.git.source import unsupported_reason
from ferry.store.repositories import create_repository


def validate_repository(url: str, provider: Provider, polling_interval_seconds: int) -> str:
    """The cleaned URL, or InvalidInput with the reason Ferry cannot use it."""
    url = url.strip()
    if not url:
        raise InvalidInput("url must not be empty")
    reason = unsupported_reason(url, provider)
    if reason is not None:
        raise InvalidInput(reason)
    if polling_interval_seconds < 30:
        raise InvalidInput("polling_interval_seconds must be at least 30")
    return url


def register_repository(
    url: str, provider: Provider, sync_type: SyncType, polling_interval_seconds: int = 60
) -> tuple[Repository, str]:
    """Create a repository; returns it and its webhook secret (shown once)."""
    url = validate_repository(url, provider, polling_interval_seconds)
    return create_repository(url, provider, sync_type, polling_interval_seconds)
