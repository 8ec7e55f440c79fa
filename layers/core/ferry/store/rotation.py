"""`ferry admin rotate-key`: re-encrypt everything under a new master secret and recompute the
name index. Idempotent: every run rewrites every encrypted value under the current key and moves
every guard to the current hash, so running it twice (or again after a crash) is harmless."""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.expressions.update import Action
from pynamodb.models import Model

from ferry.domain.naming import compose_project_name
from ferry.security.crypto import Keyring, get_keyring
from ferry.store.errors import translated
from ferry.store.guards import (
    Guard,
    agent_guard,
    agent_name_key,
    application_guards,
    put_guards,
    release_guards,
    stored_application_guards,
)
from ferry.store.tables import (
    AgentRow,
    ApplicationRow,
    EncryptedAttribute,
    EncryptedBinaryAttribute,
    NotificationTargetRow,
    RepositoryRow,
    transaction,
)


@dataclass
class RotationReport:
    rows_reencrypted: int = 0
    guards_moved: int = 0


def _encrypted_attributes(model: type[Model]) -> list[str]:
    return [
        name
        for name, a in model.get_attributes().items()
        if isinstance(a, EncryptedAttribute | EncryptedBinaryAttribute)
    ]


def _reencrypt(model: type[Model], report: RotationReport) -> None:
    names = _encrypted_attributes(model)
    for row in model.scan(consistent_read=True):
        actions: list[Action] = []
        for name in names:
            value = getattr(row, name)
            if value is not None:
                actions.append(model.get_attributes()[name].set(value))
        if actions:
            # Only the encrypted attributes are rewritten: concurrent status writes are not lost.
            row.update(actions=actions)
            report.rows_reencrypted += 1


def _move_guards(keyring: Keyring, report: RotationReport) -> None:
    for row in ApplicationRow.scan(consistent_read=True):
        project = row.project_name or compose_project_name(row.name)
        new = application_guards(row.name, row.agent_id, project)
        old = stored_application_guards(row.agent_id, row.name_hash, row.project_hash)
        if new == old:
            continue
        with transaction() as write:
            write.update(
                ApplicationRow(id=row.id),
                actions=[
                    ApplicationRow.name_hash.set(keyring.name_hash(row.name)),
                    ApplicationRow.project_name.set(project),
                    ApplicationRow.project_hash.set(keyring.name_hash(project)),
                ],
                condition=ApplicationRow.id.exists(),
            )
            # A guard whose hash did not change (an ASCII project name across a normalization
            # change) is only claimed again: one transaction may not touch an item twice.
            stale = tuple(guard for guard in old if guard not in new)
            release_guards(write, stale, row.id)
            put_guards(write, new, row.id)
        report.guards_moved += len(stale)
    for agent in AgentRow.scan(consistent_read=True):
        new_agent = agent_guard(agent.name)
        old_agent = Guard(agent_name_key(agent.name_hash), "agent")
        if new_agent == old_agent:
            continue
        with transaction() as write:
            write.update(
                AgentRow(id=agent.id),
                actions=[AgentRow.name_hash.set(keyring.name_hash(agent.name))],
                condition=AgentRow.id.exists(),
            )
            release_guards(write, (old_agent,), agent.id)
            put_guards(write, (new_agent,), agent.id)
        report.guards_moved += 1


def reindex_names() -> RotationReport:
    """Move every name guard whose stored hash is not the one the current key and normalization
    give (rows stored before names were NFKC-compared, or under an earlier key). Idempotent;
    `ferry up` runs it at start, `rotate-key` as part of every rotation."""
    report = RotationReport()
    with translated("name index"):
        _move_guards(get_keyring(), report)
    return report


def reencrypt_everything() -> RotationReport:
    """Rewrite all encrypted values and name guards under the process keyring's current key.

    The keyring must hold the new key as current and the old one(s) as previous.
    """
    report = RotationReport()
    with translated("re-encryption"):
        for model in (RepositoryRow, ApplicationRow, NotificationTargetRow):
            _reencrypt(model, report)
        _move_guards(get_keyring(), report)
    return report
