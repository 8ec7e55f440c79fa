"""The DynamoDB tables (pynamodb models). Table names come from settings when this is imported.

Sensitive attributes are `EncryptedAttribute`s: encrypted on the way in, decrypted on the way out,
so nothing above this module handles ciphertext.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.constants import STRING
from pynamodb.exceptions import PynamoDBException
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from ferry.security.crypto import decrypt, decrypt_bytes, get_keyring
from ferry.settings import get_settings

_settings = get_settings()


class EncryptedAttribute(Attribute[str]):
    """A string stored AES-256-GCM encrypted under the current key."""

    attr_type = STRING

    def serialize(self, value: str) -> str:
        return get_keyring().encrypt(value)

    def deserialize(self, value: str) -> str:
        return decrypt(value)


class EncryptedBinaryAttribute(Attribute[bytes]):
    """Bytes stored AES-256-GCM encrypted under the current key (deployment bundles), as the
    same text as `EncryptedAttribute`'s (so every table stays plain JSON for the local stack)."""

    attr_type = STRING

    def serialize(self, value: bytes) -> str:
        return get_keyring().encrypt_bytes(value)

    def deserialize(self, value: str) -> bytes:
        return decrypt_bytes(value)


class RepositoryRow(Model):
    class Meta:
        table_name = _settings.repositories_table

    id = UnicodeAttribute(hash_key=True)
    url = UnicodeAttribute()
    provider = UnicodeAttribute()
    sync_type = UnicodeAttribute()
    polling_interval_seconds = NumberAttribute(default=60)
    webhook_secret = EncryptedAttribute()
    credentials = EncryptedAttribute(null=True)  # JSON of RepositoryCredentials
    sync_status = UnicodeAttribute(default="unknown")
    last_sync_error = UnicodeAttribute(null=True)
    last_synced_at = UTCDateTimeAttribute(null=True)
    # When the latest sync attempt marked the repository `syncing` (the poller's clock for
    # ending a sync whose job died); kept after the sync ends.
    sync_started_at = UTCDateTimeAttribute(null=True)
    sync_job_id = UnicodeAttribute(null=True)  # the sync job of the latest attempt
    polled_at = UTCDateTimeAttribute(null=True)
    failures = NumberAttribute(default=0)  # consecutive failed syncs: polling backs off
    # GitHub Actions: the repository's numeric id, recorded on the first verified run, and the
    # optional allow-lists of branches and workflows that may trigger a sync.
    github_repository_id = UnicodeAttribute(null=True)
    github_repository = UnicodeAttribute(null=True)  # owner/repo, when the URL does not say
    # Whether Actions runs may sync it. Absent on rows stored before it was an opt-in: those
    # keep Actions on (store/repositories.py), new rows store False unless asked.
    github_actions = BooleanAttribute(null=True)
    actions_branches = ListAttribute(of=UnicodeAttribute, null=True)
    actions_workflows = ListAttribute(of=UnicodeAttribute, null=True)
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
    name = EncryptedAttribute()
    name_hash = UnicodeAttribute()  # blind index, see NameGuardRow
    project_hash = UnicodeAttribute()
    repository_id = UnicodeAttribute()
    agent_id = UnicodeAttribute()
    branch = UnicodeAttribute()
    path = UnicodeAttribute()
    # The bundle's directory when it is not the compose file's own ("." is the repository root).
    root = UnicodeAttribute(null=True)
    sync_status = UnicodeAttribute(default="unknown")
    health_status = UnicodeAttribute(default="unknown")
    commit = UnicodeAttribute(null=True)
    commit_message = UnicodeAttribute(null=True)
    target_commit = UnicodeAttribute(null=True)
    target_commit_message = UnicodeAttribute(null=True)
    pinned_commit = UnicodeAttribute(null=True)
    # Derived from the (secret) name: encrypted like it. Null: a record from before it was stored.
    project_name = EncryptedAttribute(null=True)
    last_synced_at = UTCDateTimeAttribute(null=True)
    last_sync_error = UnicodeAttribute(null=True)
    compose_file = EncryptedAttribute(null=True)
    previous_compose_file = EncryptedAttribute(null=True)
    # The target's bundle (ferry/domain/bundle.py), written with compose_file: its digest and
    # directory, its file list, and the archive itself while it is small enough to travel inline
    # (a larger one is kept in the bundle bucket, see store/bundles.py).
    bundle_digest = UnicodeAttribute(null=True)
    bundle_root = UnicodeAttribute(null=True)
    bundle_files = EncryptedBinaryAttribute(null=True)
    bundle_archive = EncryptedBinaryAttribute(null=True)
    current_request_id = UnicodeAttribute(null=True)
    current_trigger = UnicodeAttribute(null=True)
    removal_request_id = UnicodeAttribute(null=True)
    # The deploy slot: the one request allowed to run on the agent now, until its lease ends.
    deploy_slot = UnicodeAttribute(null=True)
    deploy_slot_until = UTCDateTimeAttribute(null=True)
    notification_ids = ListAttribute(of=UnicodeAttribute, default=list)
    image_updates = UnicodeAttribute(default="off")
    self_heal = BooleanAttribute(default=False)
    image_deployed_at = UTCDateTimeAttribute(null=True)
    self_heal_at = ListAttribute(of=UTCDateTimeAttribute, default=list)
    self_heal_stopped_at = UTCDateTimeAttribute(null=True)
    events_seq = NumberAttribute(default=0)  # numbering of this application's history
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()

    by_repository = ApplicationsByRepository()


class AgentRow(Model):
    class Meta:
        table_name = _settings.agents_table

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    name_hash = UnicodeAttribute()
    token_hash = UnicodeAttribute()
    queue_url = UnicodeAttribute()
    last_seen_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    # The image webhook's token (`<agent id>.<secret>` in its URL), hashed like the agent token.
    image_webhook_hash = UnicodeAttribute(null=True)


class ApplicationEventRow(Model):
    class Meta:
        table_name = _settings.application_events_table

    application_id = UnicodeAttribute(hash_key=True)
    # The event's number in its application's history, zero-padded: sorts newest-first and lets
    # the 1000-event window be kept with one delete per new event.
    sort_key = UnicodeAttribute(range_key=True)
    id = UnicodeAttribute()
    type = UnicodeAttribute()
    # Stored under its first name: rows written before the rename stay readable as they are.
    trigger = UnicodeAttribute(attr_name="source")
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


class NameGuardRow(Model):
    """One item per unique name: `<scope>#<hash>` exists only while its owner holds the name.

    Creating a record puts its guard items in the same transaction with `attribute_not_exists`,
    so two concurrent creates of one name cannot both succeed (no check-then-insert).
    """

    class Meta:
        table_name = _settings.name_guards_table

    id = UnicodeAttribute(hash_key=True)
    owner_id = UnicodeAttribute()


class ChangeRow(Model):
    """The change feed behind Server-Sent Events: one row per change, numbered."""

    class Meta:
        table_name = _settings.changes_table

    feed = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    path = UnicodeAttribute()
    kind = UnicodeAttribute()
    ok = BooleanAttribute(default=True)
    detail = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute(null=True)  # absent on the deploy state machine's own announcement
    expires_at = TTLAttribute(null=True)


class CounterRow(Model):
    """Atomic counters: feed sequence numbers and rate-limit windows."""

    class Meta:
        table_name = _settings.counters_table

    id = UnicodeAttribute(hash_key=True)
    value = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)


class NotificationTargetRow(Model):
    class Meta:
        table_name = _settings.notification_targets_table

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    url = EncryptedAttribute()  # apprise URLs carry tokens and passwords
    display_url = UnicodeAttribute()  # the redacted form, safe to show
    last_status = UnicodeAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    last_sent_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute()


class JobRow(Model):
    """A sync job's progress, so a trigger's caller can follow what its 202 started."""

    class Meta:
        table_name = _settings.jobs_table

    id = UnicodeAttribute(hash_key=True)
    repository_id = UnicodeAttribute()
    trigger = UnicodeAttribute(attr_name="origin")  # its first name, as stored
    status = UnicodeAttribute()  # queued, running, succeeded, failed, superseded
    branch = UnicodeAttribute(null=True)
    commit = UnicodeAttribute(null=True)
    actor = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    result = UnicodeAttribute(null=True)  # JSON: per-application outcome
    # The job as it was queued (JSON), so that it can be queued again when the queue lost it
    # (a restart of the local stack).
    message = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    finished_at = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class BranchLatestJobRow(Model):
    """The newest follow-head sync job recorded for one branch (per trigger), so the sync worker
    can tell with one strongly consistent read whether a newer job of the branch is queued.

    Kept in the jobs table under its own key ("branch#<repository>#<trigger>#<branch>"); it has no
    status, so the scans for unfinished jobs never see it.
    """

    class Meta:
        table_name = _settings.jobs_table

    id = UnicodeAttribute(hash_key=True)
    latest_job = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)


class DeliveryRow(Model):
    """One webhook delivery and what Ferry made of it (accepted, ignored, refused, and why)."""

    class Meta:
        table_name = _settings.deliveries_table

    repository_id = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)  # "<received ISO>#<id>", newest last
    id = UnicodeAttribute()
    sender = UnicodeAttribute()
    event = UnicodeAttribute(null=True)
    delivery_id = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    status_code = NumberAttribute()
    job_id = UnicodeAttribute(null=True)
    received_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute(null=True)


ALL_TABLES: tuple[type[Model], ...] = (
    RepositoryRow,
    ApplicationRow,
    AgentRow,
    ApplicationEventRow,
    ApiTokenRow,
    NameGuardRow,
    ChangeRow,
    CounterRow,
    NotificationTargetRow,
    JobRow,
    DeliveryRow,
)


def transaction() -> TransactWrite:
    """A write transaction across tables (use as a context manager)."""
    return TransactWrite(connection=_shared_connection())


# One connection for the calls across tables (transactions, batches), made once: a connection
# makes its botocore client on first use, which cost ~50 ms a transaction when each made its
# own. Credentials are resolved per call, so one client serves every caller.
_cross_table_connection: list[Connection] = []


def _shared_connection() -> Connection:
    if not _cross_table_connection:
        _cross_table_connection.append(Connection())
    return _cross_table_connection[0]


def _batch_client() -> Any:
    """botocore's DynamoDB client as pynamodb made it, for the calls across tables."""
    return _shared_connection().client


def _until_processed(
    call: Callable[..., dict[str, Any]], requests: dict[str, Any], unprocessed: str, what: str
) -> Iterator[dict[str, Any]]:
    """Each answer of a batch call, asking again for what DynamoDB left `unprocessed` (up to 5
    calls); PynamoDBException when some stays unprocessed, or when a call fails (as pynamodb's
    own calls fail, so that `translated` reads the error's code)."""
    for _attempt in range(5):
        try:
            answer = call(RequestItems=requests)
        except (BotoCoreError, ClientError) as exc:
            raise PynamoDBException(str(exc), cause=exc) from exc
        yield answer
        requests = answer.get(unprocessed) or {}
        if not requests:
            return
    raise PynamoDBException(f"{what} left unprocessed")


def batch_write(puts: Sequence[Model] = (), deletes: Sequence[Model] = ()) -> None:
    """Rows of several tables put and deleted in one round trip: for writes that need no
    transaction (nothing is conditional, a partial write is no harm). What DynamoDB leaves
    unprocessed is sent again; PynamoDBException when it stays unprocessed."""
    requests: dict[str, list[dict[str, Any]]] = {}
    for row in puts:
        requests.setdefault(row.Meta.table_name, []).append(
            {"PutRequest": {"Item": row.serialize()}}
        )
    for row in deletes:
        key = {
            attribute.attr_name: {attribute.attr_type: attribute.serialize(getattr(row, name))}
            for name, attribute in row.get_attributes().items()
            if attribute.is_hash_key or attribute.is_range_key
        }
        requests.setdefault(row.Meta.table_name, []).append({"DeleteRequest": {"Key": key}})
    client = _batch_client()
    for _answer in _until_processed(
        client.batch_write_item, requests, "UnprocessedItems", "batch write: items"
    ):
        pass


# BatchGetItem's limit of keys per call.
BATCH_GET_KEYS = 100


def batch_get(keys: Sequence[tuple[type[Model], str]]) -> list[Model]:
    """Rows of several tables (each named by its model and hash key) read in one round trip
    per 100 keys, consistently; rows that do not exist are missing from the answer. What
    DynamoDB leaves unprocessed is asked again; PynamoDBException when it stays unprocessed."""
    client = _batch_client()
    models = {model.Meta.table_name: model for model, _key in keys}
    hash_keys = {
        table: next(a for a in model.get_attributes().values() if a.is_hash_key)
        for table, model in models.items()
    }
    rows: list[Model] = []
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), BATCH_GET_KEYS):
        requests: dict[str, Any] = {}
        for model, key in unique[start : start + BATCH_GET_KEYS]:
            table = model.Meta.table_name
            wanted = requests.setdefault(table, {"Keys": [], "ConsistentRead": True})
            wanted["Keys"].append({hash_keys[table].attr_name: {hash_keys[table].attr_type: key}})
        for answer in _until_processed(
            client.batch_get_item, requests, "UnprocessedKeys", "batch get: keys"
        ):
            for table, items in answer.get("Responses", {}).items():
                rows.extend(models[table].from_raw_data(item) for item in items)
    return rows


def reset_connections() -> None:
    """Drop cached connections so the next call picks up the current endpoint (local stack)."""
    for table in ALL_TABLES:
        table._connection = None
    _cross_table_connection.clear()


def row_values(row: Model) -> dict[str, Any]:
    """A row's attributes as a plain dict (attribute name → Python value)."""
    return {name: getattr(row, name) for name in row.get_attributes()}
