from __future__ import annotations

from fastapi import APIRouter, status

from ferry.agents import register_agent
from ferry.api.schemas import AgentCreated, AgentIn, AgentOut
from ferry.store.agents import list_agents

router = APIRouter(prefix="/agents", tags=["agents"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: AgentIn) -> AgentCreated:
    """Register an agent. Its token is in this answer and never again."""
    agent, token = register_agent(body.name)
    return AgentCreated(**agent.model_dump(), token=token)


@router.get("")
def list_all() -> list[AgentOut]:
    return [AgentOut(**a.model_dump()) for a in list_agents()]
