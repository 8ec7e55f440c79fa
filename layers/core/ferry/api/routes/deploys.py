"""GET /api/v1/applications/{id}/deploys/{request_id}: a deploy's execution as Step Functions
ran it, i.e. the path it took through the deploy state machine (what `ferry demo` prints)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ferry.aws.executions import describe_deploy
from ferry.errors import NotFound
from ferry.store.applications import get_application

router = APIRouter(prefix="/applications", tags=["applications"])


class DeployExecution(BaseModel):
    request_id: str
    status: str = Field(description="RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.")
    path: list[str] = Field(description="The states it entered, in order.")


@router.get("/{application_id}/deploys/{request_id}")
def get_deploy(application_id: str, request_id: str) -> DeployExecution:
    """One deploy of the application (its history's `request_id`): status and path."""
    get_application(application_id)
    # Deploy executions are named after their application (application + commit + trigger).
    if not request_id.startswith(f"{application_id}-"):
        raise NotFound(f"deploy {request_id} not found")
    execution = describe_deploy(request_id)
    return DeployExecution(request_id=request_id, status=execution.status, path=execution.path)
