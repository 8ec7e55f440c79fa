from __future__ import annotations

import boto3
from fastapi import APIRouter, Response, status

from ferry.api.deps import CurrentAgent
from ferry.api.schemas import AgentSession
from ferry.settings import get_settings
from ferry.store.agents import touch_agent

router = APIRouter(prefix="/agent", tags=["agent"])


@router.get("/session")
def session(agent: CurrentAgent) -> AgentSession:
    """For agents (agent token as Bearer): where to take jobs from."""
    touch_agent(agent.id)
    settings = get_settings()
    return AgentSession(
        agent_id=agent.id,
        name=agent.name,
        queue_url=agent.queue_url,
        region=boto3.session.Session().region_name or "us-east-1",
        aws_endpoint_url=settings.aws_endpoint_url or None,
    )


@router.post("/heartbeat", status_code=status.HTTP_204_NO_CONTENT)
def heartbeat(agent: CurrentAgent) -> Response:
    """For agents: "still here" (an agent is listed offline after 90 s without one)."""
    touch_agent(agent.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
