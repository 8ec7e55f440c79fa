from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from ferry.api.schemas import ApplicationCreated, ApplicationEventOut, ApplicationIn, ApplicationOut
from ferry.applications import register_application
from ferry.domain.models import Application
from ferry.store.applications import get_application, list_applications
from ferry.store.events import list_events

router = APIRouter(prefix="/applications", tags=["applications"])


def to_out(application: Application) -> ApplicationOut:
    return ApplicationOut(**application.model_dump(), project_name=application.project_name)


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: ApplicationIn) -> ApplicationCreated:
    """Register an application; its first sync (and deploy) is queued at once."""
    application, job_id = register_application(
        name=body.name,
        repository_id=body.repository_id,
        agent_id=body.agent_id,
        branch=body.branch,
        path=body.path,
    )
    return ApplicationCreated(**to_out(application).model_dump(), job_id=job_id)


@router.get("")
def list_all() -> list[ApplicationOut]:
    return [to_out(a) for a in list_applications()]


@router.get("/{application_id}")
def get_one(application_id: str) -> ApplicationOut:
    return to_out(get_application(application_id))


@router.get("/{application_id}/events")
def events(
    application_id: str, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[ApplicationEventOut]:
    """The application's history, newest first."""
    get_application(application_id)
    return [ApplicationEventOut(**e.model_dump()) for e in list_events(application_id, limit)]
