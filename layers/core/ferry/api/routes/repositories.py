from __future__ import annotations

from fastapi import APIRouter, Request, status

from ferry.api.schemas import RepositoryCreated, RepositoryIn, RepositoryOut
from ferry.repositories import register_repository
from ferry.settings import get_settings
from ferry.store.repositories import get_repository, list_repositories

router = APIRouter(prefix="/repositories", tags=["repositories"])


def webhook_url(request: Request, repository_id: str) -> str:
    base = get_settings().api_url or str(request.base_url)
    return f"{base.rstrip('/')}/api/v1/webhooks/repositories/{repository_id}"


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: RepositoryIn, request: Request) -> RepositoryCreated:
    """Register a repository. The webhook secret is in this answer and never again."""
    repository, secret = register_repository(
        body.url, body.provider, body.sync_type, body.polling_interval_seconds
    )
    return RepositoryCreated(
        **repository.model_dump(),
        webhook_url=webhook_url(request, repository.id),
        webhook_secret=secret,
    )


@router.get("")
def list_all() -> list[RepositoryOut]:
    return [RepositoryOut(**r.model_dump()) for r in list_repositories()]


@router.get("/{repository_id}")
def get_one(repository_id: str) -> RepositoryOut:
    return RepositoryOut(**get_repository(repository_id).model_dump())
