"""Registering agents: a queue of its own plus a record with a hashed token."""

from __future__ import annotations

from ferry.agent_queues import ensure_agent_queue
from ferry.domain.models import Agent
from ferry.errors import Conflict, InvalidInput
from ferry.store.agents import create_agent, find_agent_by_name, new_agent_id


def register_agent(name: str) -> tuple[Agent, str]:
    """Create an agent; returns it and its token (shown once)."""
    name = name.strip()
    if not name:
        raise InvalidInput("agent name must not be empty")
    if find_agent_by_name(name) is not None:
        raise Conflict(f"an agent named {name!r} already exists")
    agent_id = new_agent_id()
    return create_agent(agent_id, name, ensure_agent_queue(agent_id))
