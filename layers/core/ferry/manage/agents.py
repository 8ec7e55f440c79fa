"""Agents as the API offers them: each with a queue of its own and a hashed token."""

from __future__ import annotations

from datetime import timedelta

from ferry.aws.queues import delete_agent_queue, ensure_agent_queue
from ferry.domain.models import Agent, utcnow
from ferry.domain.validation import clean_name
from ferry.errors import Conflict
from ferry.settings import get_settings
from ferry.store.agents import create_agent, delete_agent, get_agent, new_agent_id
from ferry.store.applications import list_agent_applications
from ferry.store.feed import agent_path, announce


def register_agent(name: str) -> tuple[Agent, str]:
    """Create an agent; returns it and its token (shown once). Conflict when the name is taken.

    The name is checked before the agent's queue is made, so a refused name leaves nothing behind.
    """
    name = clean_name(name, "agent name")
    agent_id = new_agent_id()
    agent, token = create_agent(agent_id, name, ensure_agent_queue(agent_id))
    announce(agent_path(agent.id), "agent.created")
    return agent, token


def is_online(agent: Agent) -> bool:
    """Heard from within the offline threshold."""
    if agent.last_seen_at is None:
        return False
    threshold = timedelta(seconds=get_settings().agent_offline_after_seconds)
    return utcnow() - agent.last_seen_at <= threshold


def remove_agent(agent_id: str) -> None:
    """Delete an agent and its queue; refused while applications are assigned to it."""
    agent = get_agent(agent_id)
    assigned = list_agent_applications(agent_id)
    if assigned:
        raise Conflict(
            f"agent {agent.name!r} still runs {len(assigned)} application(s); remove them first"
        )
    delete_agent(agent_id)
    try:
        delete_agent_queue(agent.queue_url)
    finally:
        announce(agent_path(agent_id), "agent.deleted")
