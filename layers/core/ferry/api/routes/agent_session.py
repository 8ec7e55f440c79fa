from __future__ import annotations

from fastapi import APIRouter, Response, status

from ferry.api.deps import CurrentAgent
from ferry.deploy.status import update_application_status
from ferry.domain.messages import AgentSession, HealthReport, RequestState
from ferry.errors import Forbidden, NotFound
from ferry.manage.agent_sessions import agent_session
from ferry.store.agents import touch_agent
from ferry.store.applications import get_application

router = APIRouter(prefix="/agent", tags=["agent"])


@router.get("/session")
def session(agent: CurrentAgent) -> AgentSession:
    """For agents (agent token as Bearer): where to take deploy requests from, with short-lived
    credentials limited to that queue and to answering tasks."""
    touch_agent(agent.id)
    return agent_session(agent)


@router.post("/heartbeat", status_code=status.HTTP_204_NO_CONTENT)
def heartbeat(agent: CurrentAgent) -> Response:
    """For agents: "still here" (an agent is listed offline after 90 s without one)."""
    touch_agent(agent.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/requests/{request_id}")
def request_state(request_id: str, application_id: str, agent: CurrentAgent) -> RequestState:
    """For agents, while they work: is this deploy request still the application's current one?
    False once it was cancelled or superseded: the agent then stops it."""
    try:
        application = get_application(application_id)
    except NotFound:
        application = None
    if application is None or application.agent_id != agent.id:
        # The same answer whether the application is gone or another agent's: an agent learns
        # nothing about applications that are not its own.
        raise NotFound("no such application on this agent")
    return RequestState(request_id=request_id, current=application.current_request_id == request_id)


@router.post("/health", status_code=status.HTTP_204_NO_CONTENT)
def health(report: HealthReport, agent: CurrentAgent) -> Response:
    """For agents: an application's settled health changed (from Docker events). Only
    applications assigned to the reporting agent are updated (403 otherwise)."""
    touch_agent(agent.id)
    application = get_application(report.application_id)
    if application.agent_id != agent.id:
        raise Forbidden("that application is not assigned to this agent")
    if application.health_status is not report.health_status:
        update_application_status(application.id, {"health_status": report.health_status})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
