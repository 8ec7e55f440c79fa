"""Authentication dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ferry.domain.models import Agent
from ferry.errors import Unauthorized
from ferry.store.agents import authenticate_agent
from ferry.store.tokens import require_api_token

_bearer = HTTPBearer(auto_error=False, description="An API token (`ferry up` prints one).")
_agent_bearer = HTTPBearer(
    auto_error=False, scheme_name="AgentToken", description="An agent token."
)


def _presented(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing bearer token")
    return credentials.credentials


def api_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    require_api_token(_presented(credentials))


def current_agent(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_agent_bearer)],
) -> Agent:
    return authenticate_agent(_presented(credentials))


CurrentAgent = Annotated[Agent, Depends(current_agent)]
