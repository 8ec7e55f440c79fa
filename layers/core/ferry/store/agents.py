"""Agents and their tokens (stored hashed); names unique through a guard item."""

from __future__ import annotations

from pynamodb.exceptions import TransactWriteError

from ferry.domain.models import Agent, new_id, utcnow
from ferry.errors import Conflict, NotFound, TransientError, Unauthorized
from ferry.security.crypto import get_keyring
from ferry.security.tokens import issue_token, parse_token, secret_matches
from ferry.store.errors import translated
from ferry.store.guards import Guard, agent_guard, agent_name_key, put_guards, release_guards
from ferry.store.tables import AgentRow, row_values, transaction


def _to_domain(row: AgentRow) -> Agent:
    return Agent.model_validate(row_values(row))


def new_agent_id() -> str:
    return new_id("agt")


def create_agent(agent_id: str, name: str, queue_url: str) -> tuple[Agent, str]:
    """Store an agent whose queue already exists; returns it and its token (shown once)."""
    token = issue_token(agent_id)
    row = AgentRow(
        id=agent_id,
        name=name,
        name_hash=get_keyring().name_hash(name),
        token_hash=token.secret_hash,
        queue_url=queue_url,
        created_at=utcnow(),
    )
    guard = agent_guard(name)
    try:
        with transaction() as write:
            write.save(row, condition=AgentRow.id.does_not_exist())
            put_guards(write, (guard,), agent_id)
    except TransactWriteError as exc:
        if exc.cause_response_code == "TransactionCanceledException":
            raise Conflict(f"{guard.what} already exists") from exc
        raise TransientError(f"could not store the agent: {exc}") from exc
    return _to_domain(row), token.value


def get_agent(agent_id: str) -> Agent:
    with translated(f"agent {agent_id}"):
        return _to_domain(AgentRow.get(agent_id))


def list_agents() -> list[Agent]:
    with translated("agents"):
        rows = list(AgentRow.scan())
    return sorted((_to_domain(r) for r in rows), key=lambda a: a.created_at)


def find_agent_by_name(name: str) -> Agent | None:
    return next((a for a in list_agents() if a.name == name), None)


def delete_agent(agent_id: str) -> None:
    with translated(f"agent {agent_id}"):
        row = AgentRow.get(agent_id, consistent_read=True, attributes_to_get=["name_hash"])
    # The guard it was stored under (by its recorded hash), whatever key or normalization made it.
    guard = Guard(agent_name_key(row.name_hash), "agent")
    try:
        with transaction() as write:
            write.delete(AgentRow(id=agent_id), condition=AgentRow.id.exists())
            release_guards(write, (guard,), agent_id)
    except TransactWriteError as exc:
        if exc.cause_response_code == "TransactionCanceledException":
            raise NotFound(f"agent {agent_id} not found") from exc
        raise TransientError(f"could not delete the agent: {exc}") from exc


def authenticate_agent(token_value: str) -> Agent:
    """The agent a bearer token belongs to; Unauthorized for anything else."""
    presented = parse_token(token_value)
    if presented is None:
        raise Unauthorized("malformed agent token")
    try:
        with translated(f"agent {presented.record_id}"):
            row = AgentRow.get(presented.record_id)
    except NotFound:
        raise Unauthorized("unknown agent token") from None
    if not secret_matches(presented.secret, row.token_hash):
        raise Unauthorized("unknown agent token")
    return _to_domain(row)


def touch_agent(agent_id: str) -> None:
    """Record that the agent was in contact just now."""
    with translated(f"agent {agent_id}", on_condition=NotFound):
        AgentRow(id=agent_id).update(
            actions=[AgentRow.last_seen_at.set(utcnow())], condition=AgentRow.id.exists()
        )


def rotate_agent_token(agent_id: str) -> str:
    """Replace the agent's token; returns the new one (shown once). The old one stops working."""
    token = issue_token(agent_id)
    with translated(f"agent {agent_id}", on_condition=NotFound):
        AgentRow(id=agent_id).update(
            actions=[AgentRow.token_hash.set(token.secret_hash)], condition=AgentRow.id.exists()
        )
    return token.value


def issue_image_webhook_token(agent_id: str) -> str:
    """A new image webhook token for the agent (shown once; a previous one stops working)."""
    token = issue_token(agent_id)
    with translated(f"agent {agent_id}", on_condition=NotFound):
        AgentRow(id=agent_id).update(
            actions=[AgentRow.image_webhook_hash.set(token.secret_hash)],
            condition=AgentRow.id.exists(),
        )
    return token.value


def authenticate_image_webhook(token_value: str) -> Agent:
    """The agent an image webhook token belongs to; Unauthorized for anything else."""
    presented = parse_token(token_value)
    if presented is None:
        raise Unauthorized("malformed image webhook token")
    try:
        with translated(f"agent {presented.record_id}"):
            row = AgentRow.get(presented.record_id)
    except NotFound:
        raise Unauthorized("unknown image webhook token") from None
    if row.image_webhook_hash is None or not secret_matches(
        presented.secret, row.image_webhook_hash
    ):
        raise Unauthorized("unknown image webhook token")
    return _to_domain(row)
