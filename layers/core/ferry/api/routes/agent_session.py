from __future__ import annotations

import boto3
from fastapi import APIRouter, Response, status

from ferry.agent_sessions import agent_credentials
from ferry.api.deps import CurrentAgent
from ferry.api.schemas import AgentSession, AwsCredentials, HealthReport, JobState
from ferry.errors import Forbidden
from ferry.settings import get_settings
from ferry.status import update_application_status
from ferry.store.agents import touch_agent
from ferry.store.applications import get_application

router = APIRouter(prefix="/agent", tags=["agent"])


@router.get("/session")
def session(agent: CurrentAgent) -> AgentSession:
    """For agents (agent token as Bearer): where to take jobs from, with short-lived credentials
    limited to that queue and to answering tasks."""
    touch_agent(agent.id)
    settings = get_settings()
    region = boto3.session.Session().region_name or "us-east-1"
    credentials = agent_credentials(agent, region)
    return AgentSession(
        agent_id=agent.id,
        name=agent.name,
        queue_url=agent.queue_url,
        region=region,
        aws_endpoint_url=settings.aws_endpoint_url or None,
        credentials=AwsCredentials(**credentials) if credentials else None,
    )


@router.post("/heartbeat", status_code=status.HTTP_204_NO_CONTENT)
def heartbeat(agent: CurrentAgent) -> Response:
    """For agents: "still here" (an agent is listed offline after 90 s without one)."""
    touch_agent(agent.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/jobs/{request_id}")
def job_state(request_id: str, application_id: str, agent: CurrentAgent) -> JobState:
    """For agents, while they work: is this deploy still the application's current one? False
    once it was cancelled or superseded: the agent then stops it."""
    application = get_application(application_id)
    if application.agent_id != agent.id:
        raise Forbidden("that application is not assigned to this agent")
    return JobState(request_id=request_id, current=application.current_request_id == request_id)


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
