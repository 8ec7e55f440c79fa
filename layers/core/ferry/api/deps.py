"""Authentication dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ferry.domain.models import Agent
from ferry.errors import Unauthorized
from ferry.store.agents import authenticate_agent
from ferry.store.tokens import authenticate_api_token

_bearer = HTTPBearer(auto_error=False, description="An API token (`ferry up` prints one).")
_agent_bearer = HTTPBearer(
    auto_error=False, scheme_name="AgentToken", description="An agent token."
)


def _presented(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing bearer token")
    return credentials.credentials


def api_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller's API token name (kept on the request as the actor of what it does)."""
    name = authenticate_api_token(_presented(credentials))
    request.state.actor = name
    return name


def current_agent(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_agent_bearer)],
) -> Agent:
    return authenticate_agent(_presented(credentials))


Actor = Annotated[str, Depends(api_token)]
CurrentAgent = Annotated[Agent, Depends(current_agent)]
