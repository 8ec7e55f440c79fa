"""Agent configuration from the environment (or a .env-style file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AgentConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FERRY_", extra="ignore")

    api_url: str = Field(description="The Ferry API, e.g. https://ferry.example.com")
    agent_token: str = Field(repr=False, description="The token `ferry agent add` printed.")
    deployments_dir: Path = Field(
        default=Path("/var/lib/ferry-agent/deployments"),
        description="Where each application's compose files are written, one folder a project.",
    )
    docker_host: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DOCKER_HOST", "FERRY_DOCKER_HOST"),
        description="The Docker daemon; unset means the local socket.",
    )
    poll_wait_seconds: int = Field(default=20, ge=0, le=20)
    compose_timeout_seconds: int = Field(default=600, ge=10)
    health_wait_seconds: int = Field(
        default=10, ge=0, description="How long to wait for health checks to settle after up."
    )
    policy_bind_allow_list: bool = Field(
        default=False,
        description="Only allow bind mounts inside the deployments directory.",
    )
    policy_bypass: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "Per application (id or name): security-policy rule ids it is excused from, as JSON, "
            'e.g. {"monitoring": ["docker_socket"]}.'
        ),
    )
