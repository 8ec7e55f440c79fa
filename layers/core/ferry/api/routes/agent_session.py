from __future__ import annotations

from fastapi import APIRouter, Response, status

from ferry.api.deps import CurrentAgent
from ferry.deploy.status import update_application_status
from ferry.domain.messages import (
    AgentApplication,
    AgentSession,
    DriftReport,
    HealthReport,
    ImageReport,
    ImageReportAnswer,
    RequestState,
)
from ferry.domain.models import Agent, Application
from ferry.domain.validation import check_id
from ferry.errors import InvalidInput, NotFound
from ferry.manage.agent_sessions import agent_session
from ferry.manage.drift import record_drift
from ferry.manage.image_updates import receive_image_report, watched_applications
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


@router.get(
    "/requests/{request_id}",
    responses={404: {"description": "not an application of this agent (or none at all)"}},
)
def request_state(request_id: str, application_id: str, agent: CurrentAgent) -> RequestState:
    """For agents, while they work: is this deploy request still the application's current one?
    False once it was cancelled or superseded: the agent then stops it."""
    application = _own_application(application_id, agent)
    return RequestState(request_id=request_id, current=application.current_request_id == request_id)


def _own_application(application_id: str, agent: Agent) -> Application:
    """The application if it is assigned to `agent`. One that does not exist and one of another
    agent's are answered alike (404), so an agent learns nothing about other agents' records."""
    try:
        application = get_application(check_id(application_id, "application_id"))
    except (NotFound, InvalidInput):
        application = None
    if application is None or application.agent_id != agent.id:
        raise NotFound("this agent runs no such application")
    return application


@router.post(
    "/health",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "not an application of this agent (or none at all)"}},
)
def health(report: HealthReport, agent: CurrentAgent) -> Response:
    """For agents: an application's settled health changed (from Docker events). Only
    applications assigned to the reporting agent are updated (404 otherwise)."""
    touch_agent(agent.id)
    application = _own_application(report.application_id, agent)
    if application.health_status is not report.health_status:
        update_application_status(application.id, {"health_status": report.health_status})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/applications")
def applications(agent: CurrentAgent) -> list[AgentApplication]:
    """For agents: their applications and what to watch for each (image updates)."""
    touch_agent(agent.id)
    return watched_applications(agent)


@router.post(
    "/drift",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "not an application of this agent (or none at all)"}},
)
def drift(report: DriftReport, agent: CurrentAgent) -> Response:
    """For agents: what runs differs from what they deployed ("web stopped"), or no longer does
    (no differences). The application goes `out_of_sync` with what differs and, where it
    self-heals, is redeployed."""
    touch_agent(agent.id)
    record_drift(_own_application(report.application_id, agent), report)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/images",
    responses={404: {"description": "not an application of this agent (or none at all)"}},
)
def images(report: ImageReport, agent: CurrentAgent) -> ImageReportAnswer:
    """For agents: an application's images whose registry digest moved (or why the check
    failed). Its `image_updates` decides: notified, deployed, or debounced (report again after
    `retry_after_seconds`)."""
    touch_agent(agent.id)
    return receive_image_report(_own_application(report.application_id, agent), report)
