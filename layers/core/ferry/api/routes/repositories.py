from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from ferry.api.deps import Actor
from ferry.api.schemas import (
    JobAccepted,
    RepositoryCreated,
    RepositoryIn,
    RepositoryOut,
    RepositoryPatch,
    WebhookSecret,
)
from ferry.domain.models import Repository
from ferry.manage.repositories import (
    change_repository,
    new_webhook_secret,
    register_repository,
    remove_repository,
)
from ferry.settings import get_settings
from ferry.store.deliveries import Delivery, list_deliveries
from ferry.store.repositories import get_repository, list_repositories
from ferry.sync.manual import request_sync

router = APIRouter(prefix="/repositories", tags=["repositories"])


def webhook_url(request: Request, repository_id: str) -> str:
    base = get_settings().api_url or str(request.base_url)
    return f"{base.rstrip('/')}/api/v1/webhooks/repositories/{repository_id}"


def to_out(repository: Repository) -> RepositoryOut:
    return RepositoryOut(**repository.model_dump())


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: RepositoryIn, request: Request) -> RepositoryCreated:
    """Register a repository. The webhook secret is in this answer and never again."""
    repository, secret = register_repository(
        body.url,
        body.provider,
        body.sync_type,
        body.polling_interval_seconds,
        body.auth.to_domain() if body.auth else None,
        options=body.model_dump(
            include={"github_repository", "actions_branches", "actions_workflows"}
        ),
        github_actions=body.github_actions,
    )
    return RepositoryCreated(
        **to_out(repository).model_dump(),
        webhook_url=webhook_url(request, repository.id),
        webhook_secret=secret,
    )


@router.get("")
def list_all() -> list[RepositoryOut]:
    return [to_out(r) for r in list_repositories()]


@router.get("/{repository_id}")
def get_one(repository_id: str) -> RepositoryOut:
    return to_out(get_repository(repository_id))


@router.patch("/{repository_id}")
def update(repository_id: str, body: RepositoryPatch) -> RepositoryOut:
    """Change the URL, provider, sync type, polling interval or credentials."""
    fields = body.model_dump(exclude_unset=True, exclude={"auth"})
    fields = {k: v for k, v in fields.items() if v is not None}
    auth_sent = "auth" in body.model_fields_set
    return to_out(
        change_repository(
            repository_id,
            fields,
            credentials=body.auth.to_domain() if body.auth else None,
            clear_credentials=auth_sent and body.auth is None,
        )
    )


@router.delete("/{repository_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(repository_id: str) -> Response:
    """Delete a repository without applications (409 otherwise)."""
    remove_repository(repository_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{repository_id}/sync", status_code=status.HTTP_202_ACCEPTED)
def sync(repository_id: str, actor: Actor) -> JobAccepted:
    """Sync now (latest commit of every branch); 409 while a sync is in flight."""
    return JobAccepted(job_id=request_sync(repository_id, actor=actor))


@router.get("/{repository_id}/deliveries")
def deliveries(repository_id: str) -> list[Delivery]:
    """The newest webhook deliveries and what Ferry made of each (accepted with its job,
    ignored or refused, and why)."""
    get_repository(repository_id)
    return list_deliveries(repository_id)


@router.post("/{repository_id}/webhook-secret")
def rotate_secret(repository_id: str, request: Request) -> WebhookSecret:
    """A new webhook secret, shown once; the old one stops working at once."""
    secret = new_webhook_secret(repository_id)
    return WebhookSecret(webhook_url=webhook_url(request, repository_id), webhook_secret=secret)
