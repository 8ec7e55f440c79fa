from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ferry.errors import PayloadTooLarge
from ferry.manage.image_updates import receive_image_webhook
from ferry.settings import get_settings
from ferry.sync.webhook import receive_webhook

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The body, or PayloadTooLarge as soon as it passes `limit` bytes (never read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request bodies are limited to {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"request bodies are limited to {limit} bytes")
    return bytes(body)


def client_source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/repositories/{repository_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": 'a ping, or an event that moves nothing: `{"ignored": reason}`'},
        400: {"description": "a push Ferry cannot act on (with the reason)"},
        401: {"description": "missing or wrong signature or secret; nothing queued"},
        404: {"description": "unknown repository"},
        413: {"description": "body over 1 MiB"},
        429: {
            "description": "too many refused requests from this address or for this "
            "repository, or too many deliveries for it (see Retry-After)"
        },
    },
)
async def repository_webhook(
    repository_id: str,
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JSONResponse:
    """A push from GitHub (`X-Hub-Signature-256`), Gitea/Forgejo/Gogs (`X-Gitea-Signature` /
    `X-Forgejo-Signature` / `X-Gogs-Signature`), Bitbucket Cloud or Data Center
    (`X-Hub-Signature: sha256=…`), GitLab (`X-Gitlab-Token`, or signed `webhook-signature`),
    Azure DevOps (basic auth) or any sender (`Authorization: Bearer <webhook secret>`, optional
    `{"ref" | "branch": ..., "commit": ...}`). Answers 202 with the queued job ids."""
    settings = get_settings()
    body = await read_limited_body(request, settings.webhook_max_body_bytes)
    # The body is read on the event loop; the store and queue calls block, so they run on the
    # threadpool (as a plain `def` route's would) instead of holding every other request up.
    answer = await run_in_threadpool(
        receive_webhook,
        repository_id,
        request.headers,
        body,
        source=client_source(request),
        limit=settings.webhook_rate_per_minute,
    )
    return JSONResponse(answer.body, status_code=answer.status_code)


@router.post(
    "/images/{token}",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": "a ping, or no application of the agent watches images"},
        400: {"description": "a delivery that names no image (with the reason)"},
        401: {"description": "unknown token, or a GitHub delivery not signed with it"},
        413: {"description": "body over 1 MiB"},
        429: {
            "description": "too many refused requests from this address, or too many "
            "deliveries for the agent (see Retry-After)"
        },
    },
)
async def image_webhook(token: str, request: Request) -> JSONResponse:
    """An image was pushed: Docker Hub's webhook, GitHub's `package` / `registry_package` event
    (signed with the token as its secret) or a generic `{"image": "registry/app:tag"}`. The
    token is the agent's image webhook token (`ferry agent image-webhook`); the agent checks the
    named images at once and reports what moved. Answers 202."""
    settings = get_settings()
    body = await read_limited_body(request, settings.webhook_max_body_bytes)
    status_code, answer = await run_in_threadpool(
        receive_image_webhook,
        token,
        request.headers,
        body,
        source=client_source(request),
        limit=settings.webhook_rate_per_minute,
    )
    return JSONResponse(answer, status_code=status_code)
