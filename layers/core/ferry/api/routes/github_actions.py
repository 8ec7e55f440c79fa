from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, status
from starlette.concurrency import run_in_threadpool

from ferry.api.routes.webhooks import client_source, read_limited_body
from ferry.api.schemas import JobsAccepted
from ferry.errors import Unauthorized
from ferry.settings import get_settings
from ferry.sync.webhook import count_refused

router = APIRouter(tags=["github-actions"])


@router.post(
    "/github-actions",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        401: {"description": "missing, expired or unverifiable token, or wrong audience"},
        403: {
            "description": "pull request runs, branches or workflows not allowed, or no "
            "repository registered for the run"
        },
        422: {"description": 'a body that is not {"sync_repo": bool}'},
        429: {"description": "too many refused requests from this address, or too many runs"},
    },
)
async def github_actions(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JobsAccepted:
    """Called from a workflow with its OIDC token as Bearer (audience: this API's URL). Syncs the
    run's branch at the run's commit, or the whole repository with `{"sync_repo": true}`."""
    settings = get_settings()
    body = await read_limited_body(request, settings.webhook_max_body_bytes)
    source, limit = client_source(request), settings.webhook_rate_per_minute
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        await run_in_threadpool(count_refused, source, limit)
        raise Unauthorized("send the job's OIDC token as Authorization: Bearer <token>")
    audience = settings.api_url or str(request.base_url)
    # The OIDC verifier (jwt, the outbound HTTP client) loads with the first run, not the API.
    from ferry.sync.github_actions import receive_actions_run

    # Blocking calls (the issuer's keys, the store, the queue): on the threadpool, not the loop.
    job_ids = await run_in_threadpool(
        receive_actions_run, token.strip(), body, audience=audience, source=source, limit=limit
    )
    return JobsAccepted(job_ids=job_ids)
