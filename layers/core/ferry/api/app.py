"""The FastAPI app factory: one app for Lambda (Mangum) and for the local stack (uvicorn)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from ferry import __version__
from ferry.api.deps import api_token
from ferry.api.errors import install_error_handlers
from ferry.api.limits import BodyLimit
from ferry.api.openapi import error_aware_openapi
from ferry.api.routes import (
    agent_session,
    agents,
    applications,
    deploys,
    events,
    github_actions,
    health,
    jobs,
    notifications,
    repositories,
    ui,
    webhooks,
)
from ferry.settings import get_settings

API_PREFIX = "/api/v1"


def create_app() -> FastAPI:
    app = FastAPI(
        title="Ferry",
        version=__version__,
        summary="GitOps for Docker Compose",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=get_settings().max_body_bytes)

    # No token: liveness, webhooks (their own secrets) and agents (their own tokens).
    public = APIRouter()
    public.include_router(health.router)
    public.include_router(webhooks.router)
    public.include_router(github_actions.router)
    public.include_router(agent_session.router)

    protected = APIRouter(dependencies=[Depends(api_token)])
    protected.include_router(repositories.router)
    protected.include_router(agents.router)
    protected.include_router(applications.router)
    protected.include_router(deploys.router)
    protected.include_router(notifications.router)
    protected.include_router(events.router)
    protected.include_router(jobs.router)

    app.include_router(ui.router)  # the status page (public; its data needs a token)
    # The prefix is given here, not on the groups: FastAPI checks the routes of a group included
    # without one for empty paths, which builds every route a second time at import (about a
    # tenth of the API's cold start); with it, a route is built for its group when first matched.
    app.include_router(public, prefix=API_PREFIX)
    app.include_router(protected, prefix=API_PREFIX)
    app.openapi = error_aware_openapi(app)  # type: ignore[method-assign]
    return app
