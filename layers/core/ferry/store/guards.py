"""Uniqueness through guard items: `<scope>#<blind hash>` rows written in the same transaction as
the record they protect (see NameGuardRow). Hashes come from the keyring's name index."""

from __future__ import annotations

from dataclasses import dataclass, field

from pynamodb.transactions import TransactWrite

from ferry.domain.naming import compose_project_name
from ferry.security.crypto import get_keyring
from ferry.store.tables import NameGuardRow


@dataclass(frozen=True)
class Guard:
    """A guard is its key; `what` only words the error message ("an application named 'x'")."""

    key: str
    what: str = field(compare=False)


# The guard keys, one place for every writer (create, rename, rotate-key): each takes the blind
# hash, so a rotation can rebuild the keys a row was stored under from the hashes it recorded.


def application_name_key(agent_id: str, name_hash: str) -> str:
    return f"app-name#{agent_id}#{name_hash}"


def project_key(agent_id: str, project_hash: str) -> str:
    return f"project#{agent_id}#{project_hash}"


def agent_name_key(name_hash: str) -> str:
    return f"agent-name#{name_hash}"


def application_guards(name: str, agent_id: str, project: str | None = None) -> tuple[Guard, Guard]:
    """The application's name and its compose project name, each unique per agent. `project`
    is the application's fixed project (default: the one its name makes, for a new one)."""
    keyring = get_keyring()
    project = project or compose_project_name(name)
    return (
        Guard(
            application_name_key(agent_id, keyring.name_hash(name)),
            f"an application named {name.strip()!r}",
        ),
        Guard(
            project_key(agent_id, keyring.name_hash(project)),
            f"an application with compose project {project!r}",
        ),
    )


def stored_application_guards(
    agent_id: str, name_hash: str, project_hash: str
) -> tuple[Guard, Guard]:
    """The guards an application row was stored under, from the hashes it recorded. Releasing
    these (not ones recomputed from the name) also frees guards written under an earlier key or
    an earlier normalization of names."""
    return (
        Guard(application_name_key(agent_id, name_hash), "name"),
        Guard(project_key(agent_id, project_hash), "project"),
    )


def agent_guard(name: str) -> Guard:
    return Guard(agent_name_key(get_keyring().name_hash(name)), f"an agent named {name.strip()!r}")


def put_guards(transaction: TransactWrite, guards: tuple[Guard, ...], owner_id: str) -> None:
    """Claim the guards for `owner_id`; the transaction fails if another owner holds one.

    Claiming a guard one already holds succeeds, so re-running a rename or rotation is harmless.
    """
    for guard in guards:
        transaction.save(
            NameGuardRow(id=guard.key, owner_id=owner_id),
            condition=NameGuardRow.id.does_not_exist() | (NameGuardRow.owner_id == owner_id),
        )


def release_guards(transaction: TransactWrite, guards: tuple[Guard, ...], owner_id: str) -> None:
    """Give the guards up; only their owner can (a missing guard is fine)."""
    for guard in guards:
        transaction.delete(
            NameGuardRow(id=guard.key),
            condition=NameGuardRow.id.does_not_exist() | (NameGuardRow.owner_id == owner_id),
        )


def taken_by_other(guards: tuple[Guard, ...], owner_id: str) -> Guard | None:
    """After a failed transaction: which guard someone else holds (for the error message)."""
    for guard in guards:
        try:
            row = NameGuardRow.get(guard.key, consistent_read=True)
        except NameGuardRow.DoesNotExist:
            continue
        if row.owner_id != owner_id:
            return guard
    return None
