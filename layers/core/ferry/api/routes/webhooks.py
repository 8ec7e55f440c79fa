from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, status

from ferry.api.schemas import JobAccepted
from ferry.webhooks import accept_generic_webhook

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post("/repositories/{repository_id}", status_code=status.HTTP_202_ACCEPTED)
async def repository_webhook(
    repository_id: str,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> JobAccepted:
    """A push. Generic senders authenticate with `Authorization: Bearer <webhook secret>` and may
    send `{"ref" | "branch": ..., "commit": ...}`. Answers 202 with the queued sync's job id."""
    body = await request.body()
    accepted = accept_generic_webhook(repository_id, authorization, body)
    return JobAccepted(job_id=accepted.job_id, branch=accepted.branch, commit=accepted.commit)
