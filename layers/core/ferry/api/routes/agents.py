from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from ferry.api.schemas import AgentCreated, AgentIn, AgentOut, AgentToken, ImageWebhook
from ferry.domain.models import Agent
from ferry.manage.agents import is_online, register_agent, remove_agent
from ferry.settings import get_settings
from ferry.store.agents import (
    get_agent,
    issue_image_webhook_token,
    list_agents,
    rotate_agent_token,
)
from ferry.store.feed import agent_path, announce

router = APIRouter(prefix="/agents", tags=["agents"])


def to_out(agent: Agent) -> AgentOut:
    return AgentOut(**agent.model_dump(), online=is_online(agent))


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: AgentIn) -> AgentCreated:
    """Register an agent. Its token is in this answer and never again."""
    agent, token = register_agent(body.name)
    return AgentCreated(**to_out(agent).model_dump(), token=token)


@router.get("")
def list_all() -> list[AgentOut]:
    return [to_out(a) for a in list_agents()]


@router.get("/{agent_id}")
def get_one(agent_id: str) -> AgentOut:
    return to_out(get_agent(agent_id))


@router.post("/{agent_id}/token")
def rotate_token(agent_id: str) -> AgentToken:
    """A new agent token, shown once; the old one stops working at once."""
    token = rotate_agent_token(agent_id)
    announce(agent_path(agent_id), "agent.updated")
    return AgentToken(token=token)


@router.post("/{agent_id}/image-webhook")
def image_webhook(agent_id: str, request: Request) -> ImageWebhook:
    """A new image webhook URL for the agent's applications, shown once (a previous one stops
    working): registries POST image pushes there and the agent checks those images at once."""
    token = issue_image_webhook_token(agent_id)
    base = get_settings().api_url or str(request.base_url)
    return ImageWebhook(
        webhook_url=f"{base.rstrip('/')}/api/v1/webhooks/images/{token}", token=token
    )


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(agent_id: str) -> Response:
    """Delete an agent and its queue (409 while applications are assigned to it)."""
    remove_agent(agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
