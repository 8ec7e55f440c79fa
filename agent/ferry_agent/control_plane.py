"""The agent's view of the Ferry API: who am I, and where are my jobs."""

from __future__ import annotations

import httpx
from pydantic import BaseModel


class Session(BaseModel):
    agent_id: str
    name: str
    queue_url: str
    region: str
    aws_endpoint_url: str | None = None


class ControlPlaneError(Exception):
    """The API refused us or could not be reached."""


def send_heartbeat(api_url: str, token: str, timeout: float = 10.0) -> None:
    """Tell the control plane this agent is alive (it is listed offline otherwise)."""
    try:
        response = httpx.post(
            f"{api_url.rstrip('/')}/api/v1/agent/heartbeat",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise ControlPlaneError(f"cannot reach the Ferry API at {api_url}: {exc}") from exc
    if response.status_code != 204:
        raise ControlPlaneError(f"heartbeat refused ({response.status_code})")


def fetch_session(api_url: str, token: str, timeout: float = 10.0) -> Session:
    """Exchange the agent token for the agent's session (its queue and region)."""
    try:
        response = httpx.get(
            f"{api_url.rstrip('/')}/api/v1/agent/session",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise ControlPlaneError(f"cannot reach the Ferry API at {api_url}: {exc}") from exc
    if response.status_code == 401:
        raise ControlPlaneError("the Ferry API refused the agent token (401)")
    if response.status_code != 200:
        raise ControlPlaneError(
            f"the Ferry API answered {response.status_code}: {response.text[:200]}"
        )
    return Session.model_validate(response.json())
