from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, status

from ferry.api.schemas import JobAccepted
from ferry.errors import PayloadTooLarge
from ferry.ratelimit import check_rate
from ferry.settings import get_settings
from ferry.webhooks import accept_generic_webhook

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The body, or PayloadTooLarge as soon as it passes `limit` bytes (never read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"webhook bodies are limited to {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"webhook bodies are limited to {limit} bytes")
    return bytes(body)


@router.post(
    "/repositories/{repository_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        401: {"description": "missing or wrong secret; nothing queued"},
        413: {"description": "body over 1 MiB"},
        429: {"description": "too many deliveries from this source (see Retry-After)"},
    },
)
async def repository_webhook(
    repository_id: str,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> JobAccepted:
    """A push. Generic senders authenticate with `Authorization: Bearer <webhook secret>` and may
    send `{"ref" | "branch": ..., "commit": ...}`. Answers 202 with the queued sync's job id."""
    settings = get_settings()
    body = await read_limited_body(request, settings.webhook_max_body_bytes)
    source = request.client.host if request.client else "unknown"
    check_rate(f"webhook#{source}", settings.webhook_rate_per_minute)
    accepted = accept_generic_webhook(repository_id, authorization, body)
    return JobAccepted(job_id=accepted.job_id, branch=accepted.branch, commit=accepted.commit)
