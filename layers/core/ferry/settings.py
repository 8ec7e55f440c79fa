"""Configuration, read from the environment (FERRY_* variables) in one place.

Lambda gets these from template.yaml; the local stack sets them from the same template after it
has deployed it into moto. Nothing else in the code reads os.environ for configuration.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Control-plane settings; every field maps to an upper-case FERRY_ variable."""

    model_config = SettingsConfigDict(env_prefix="FERRY_", extra="ignore")

    repositories_table: str = "ferry-repositories"
    applications_table: str = "ferry-applications"
    agents_table: str = "ferry-agents"
    application_events_table: str = "ferry-application-events"
    api_tokens_table: str = "ferry-api-tokens"

    sync_queue_url: str = ""
    deploy_state_machine_arn: str = ""
    agent_queue_prefix: str = "ferry-agent-"

    secret_key: str = Field(default="", repr=False)

    deploy_timeout_seconds: int = Field(default=900, ge=1)
    deploy_heartbeat_seconds: int = Field(default=60, ge=1)

    # Where the API is reachable from outside (webhook URLs, agents). Locally the API's own URL.
    api_url: str = ""
    # Only set for the embedded local cloud: agents are told to talk to this endpoint, not AWS.
    aws_endpoint_url: str = ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
