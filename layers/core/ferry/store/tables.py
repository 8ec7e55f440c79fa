"""The DynamoDB tables (pynamodb models). Table names come from settings when this is imported."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from ferry.settings import get_settings

_settings = get_settings()


class RepositoryRow(Model):
    class Meta:
        table_name = _settings.repositories_table

    id = UnicodeAttribute(hash_key=True)
    url = UnicodeAttribute()
    provider = UnicodeAttribute()
    sync_type = UnicodeAttribute()
    polling_interval_seconds = NumberAttribute(default=60)
    webhook_secret = UnicodeAttribute()  # encrypted (SecretBox)
    sync_status = UnicodeAttribute(default="unknown")
    last_sync_error = UnicodeAttribute(null=True)
    last_synced_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class ApplicationsByRepository(GlobalSecondaryIndex["ApplicationRow"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "by_repository"
        projection = AllProjection()

    repository_id = UnicodeAttribute(hash_key=True)


class ApplicationRow(Model):
    class Meta:
        table_name = _settings.applications_table

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    repository_id = UnicodeAttribute()
    agent_id = UnicodeAttribute()
    branch = UnicodeAttribute()
    path = UnicodeAttribute()
    sync_status = UnicodeAttribute(default="unknown")
    health_status = UnicodeAttribute(default="unknown")
    commit = UnicodeAttribute(null=True)
    commit_message = UnicodeAttribute(null=True)
    last_synced_at = UTCDateTimeAttribute(null=True)
    last_sync_error = UnicodeAttribute(null=True)
    compose_file = UnicodeAttribute(null=True)
    previous_compose_file = UnicodeAttribute(null=True)
    current_request_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()

    by_repository = ApplicationsByRepository()


class AgentRow(Model):
    class Meta:
        table_name = _settings.agents_table

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    token_hash = UnicodeAttribute()
    queue_url = UnicodeAttribute()
    last_seen_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute()


class ApplicationEventRow(Model):
    class Meta:
        table_name = _settings.application_events_table

    application_id = UnicodeAttribute(hash_key=True)
    # "<created_at ISO>#<event id>": newest-first queries and a unique key per event.
    sort_key = UnicodeAttribute(range_key=True)
    id = UnicodeAttribute()
    type = UnicodeAttribute()
    source = UnicodeAttribute()
    status = UnicodeAttribute()
    commit = UnicodeAttribute(null=True)
    message = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    actor = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    finished_at = UTCDateTimeAttribute(null=True)


class ApiTokenRow(Model):
    class Meta:
        table_name = _settings.api_tokens_table

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    token_hash = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()


ALL_TABLES: tuple[type[Model], ...] = (
    RepositoryRow,
    ApplicationRow,
    AgentRow,
    ApplicationEventRow,
    ApiTokenRow,
)


def reset_connections() -> None:
    """Drop cached connections so the next call picks up the current endpoint (local stack)."""
    for table in ALL_TABLES:
        table._connection = None


def row_values(row: Model) -> dict[str, Any]:
    """A row's attributes as a plain dict (attribute name → Python value)."""
    return {name: getattr(row, name) for name in row.get_attributes()}
