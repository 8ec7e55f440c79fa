from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse

from ferry.api.deps import Actor
from ferry.api.schemas import (
    ApplicationChanged,
    ApplicationCreated,
    ApplicationEventOut,
    ApplicationIn,
    ApplicationOut,
    ApplicationPatch,
    DeployStarted,
    EventPage,
    Removing,
    RollbackIn,
    RollbackStarted,
)
from ferry.deploy.cancel import cancel_deploy
from ferry.deploy.removal import forget_application, start_removal, wait_for_removal
from ferry.domain.models import Application
from ferry.manage.applications import (
    change_application,
    redeploy_application,
    register_application,
    rollback_application,
    unpin_application,
)
from ferry.settings import get_settings
from ferry.store.applications import get_application, list_applications
from ferry.store.events import list_events

router = APIRouter(prefix="/applications", tags=["applications"])


def to_out(application: Application) -> ApplicationOut:
    return ApplicationOut(
        **application.model_dump(), removing=application.removal_request_id is not None
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: ApplicationIn, actor: Actor) -> ApplicationCreated:
    """Register an application; its first sync (and deploy) is queued at once.

    409 when the name, or the compose project it normalizes to, is taken on that agent.
    """
    application, job_id = register_application(
        name=body.name,
        repository_id=body.repository_id,
        agent_id=body.agent_id,
        branch=body.branch,
        path=body.path,
        root=body.root,
        notification_ids=body.notification_ids,
        image_updates=body.image_updates,
        self_heal=body.self_heal,
        actor=actor,
    )
    return ApplicationCreated(**to_out(application).model_dump(), job_id=job_id)


@router.get("")
def list_all() -> list[ApplicationOut]:
    return [to_out(a) for a in list_applications()]


@router.get("/{application_id}")
def get_one(application_id: str) -> ApplicationOut:
    return to_out(get_application(application_id))


@router.patch("/{application_id}")
def update(application_id: str, body: ApplicationPatch, actor: Actor) -> ApplicationChanged:
    """Rename, change branch, path, root, notifications, image updates or self-heal. A new
    branch, path or root is synced at once."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    application, job_id = change_application(application_id, changes, actor=actor)
    return ApplicationChanged(**to_out(application).model_dump(), job_id=job_id)


@router.delete(
    "/{application_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={202: {"model": Removing}, 502: {"description": "the agent could not remove it"}},
)
def delete(
    application_id: str,
    actor: Actor,
    force: Annotated[bool, Query(description="Forget it without asking its agent.")] = False,
) -> Response:
    """Tear the application down on its agent, then delete it.

    204 when removed; 202 while the agent is still at it; 502 with the reason when the agent could
    not remove it (the application is kept). `force=true` deletes the record only.
    """
    get_application(application_id)
    if force:
        forget_application(application_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    request_id = start_removal(application_id, actor=actor)
    removal = wait_for_removal(request_id, get_settings().removal_wait_seconds)
    if not removal.finished:
        return JSONResponse(Removing(request_id=request_id).model_dump(), status_code=202)
    if not removal.removed:
        return JSONResponse(
            {"detail": removal.reason or "the agent could not remove it"}, status_code=502
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{application_id}/deploy", status_code=status.HTTP_202_ACCEPTED)
def deploy(application_id: str, actor: Actor) -> DeployStarted:
    """Redeploy the stored compose file at the recorded commit."""
    return DeployStarted(request_id=redeploy_application(application_id, actor=actor))


@router.post("/{application_id}/rollback", status_code=status.HTTP_202_ACCEPTED)
def rollback(application_id: str, body: RollbackIn, actor: Actor) -> RollbackStarted:
    """Go back to `commit` (default: the last commit that deployed successfully before the
    current one) and pin the application there: pushes are recorded, not deployed, until
    `POST .../unpin`. 409 when there is no earlier good commit to go back to."""
    commit, job_id = rollback_application(
        application_id, commit=body.commit, reason=body.reason, actor=actor
    )
    return RollbackStarted(commit=commit, job_id=job_id)


@router.post("/{application_id}/unpin", status_code=status.HTTP_202_ACCEPTED)
def unpin(application_id: str, actor: Actor) -> ApplicationChanged:
    """Release a rollback's pin: the application follows its branch again (synced at once)."""
    job_id = unpin_application(application_id, actor=actor)
    return ApplicationChanged(**to_out(get_application(application_id)).model_dump(), job_id=job_id)


@router.post("/{application_id}/cancel")
def cancel(application_id: str, actor: Actor) -> DeployStarted:
    """Stop the deploy in flight: the application ends `out_of_sync` with "cancelled" (409 when
    no deploy runs). An agent already at work stops at its next heartbeat."""
    return DeployStarted(request_id=cancel_deploy(application_id, actor=actor))


@router.get("/{application_id}/events")
def events(
    application_id: str,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        int | None, Query(ge=1, description="`next_before` of the previous page")
    ] = None,
) -> EventPage:
    """The application's history, newest first, a page at a time."""
    get_application(application_id)
    items = list_events(application_id, limit, before)
    return EventPage(
        items=[ApplicationEventOut(**e.model_dump()) for e in items],
        next_before=items[-1].seq if len(items) == limit and items[-1].seq > 1 else None,
    )
