"""Agent configuration from the environment (FERRY_* variables, plus DOCKER_HOST).

One settings object, read once at start: nothing else in the agent reads `os.environ` for its
own configuration.

Read the way pydantic-settings reads them (`FERRY_<FIELD>`, or the names a field's alias lists;
names in any case; JSON for a mapping; the environment over a file of KEY=value lines), by a few
lines here: pydantic-settings, with every settings source it knows and asyncio behind them, would
weigh on the memory of an agent that idles on a host for days.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_origin

from dotenv import dotenv_values
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

ENV_PREFIX = "FERRY_"


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=False)

    api_url: str = Field(description="The Ferry API, e.g. https://ferry.example.com")
    agent_token: str = Field(repr=False, description="The token `ferry agent add` printed.")
    deployments_dir: Path = Field(
        default=Path("/var/lib/ferry-agent/deployments"),
        description="Where each application's compose files are written, one folder a project.",
    )
    docker_host: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DOCKER_HOST", "FERRY_DOCKER_HOST"),
        description="The Docker daemon: unset means the local socket; `ssh://user@host[:port]` "
        "a remote daemon reached over SSH.",
    )
    docker_ssh_key: Path | None = Field(
        default=None,
        description="Private key for an ssh:// Docker host; unset means the SSH agent and the "
        "default keys in ~/.ssh.",
    )
    docker_ssh_known_hosts: Path = Field(
        default=Path("~/.ssh/known_hosts"),
        description="known_hosts file holding the ssh:// Docker host's key.",
    )
    docker_ssh_accept_new_host_key: bool = Field(
        default=False,
        description="Record an unknown ssh:// Docker host's key on first connection (a changed "
        "key is always refused).",
    )
    poll_wait_seconds: int = Field(default=20, ge=0, le=20)
    heartbeat_seconds: float = Field(
        default=30,
        ge=1,
        description="How often the agent tells the API it is alive; an agent whose token was "
        "rotated or revoked learns it at the next one and stops taking requests.",
    )
    max_parallel_deploys: int = Field(
        default=4,
        ge=1,
        le=10,
        # FERRY_MAX_PARALLEL_JOBS is its name before "job" came to mean only a sync job.
        validation_alias=AliasChoices("FERRY_MAX_PARALLEL_DEPLOYS", "FERRY_MAX_PARALLEL_JOBS"),
        description="Deploy requests run at once (one per application at most).",
    )
    stop_grace_seconds: float = Field(
        default=60,
        ge=0,
        description="On SIGTERM, how long running requests may take to finish before they are "
        "stopped and handed back.",
    )
    compose_timeout_seconds: int = Field(default=600, ge=10)
    health_wait_seconds: int = Field(
        default=10, ge=0, description="How long to wait for health checks to settle after up."
    )
    health_debounce_seconds: float = Field(
        default=2.0,
        ge=0,
        description="Quiet time after an application's last Docker event before its health is "
        "read and reported.",
    )
    health_resync_seconds: float = Field(
        default=60.0,
        ge=1,
        description="How often every application's health is read again, events or not.",
    )
    drift_check_seconds: float = Field(
        default=60.0,
        ge=1,
        description="How often every project is compared with what was deployed, Docker events "
        "or not (events are looked at within the health debounce).",
    )
    image_check_seconds: float = Field(
        default=300.0,
        ge=1,
        description="How often the images of applications with image updates on are checked "
        "against their registries (jittered by ±10 %; the image webhook asks at once).",
    )
    docker_config: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("DOCKER_CONFIG", "FERRY_DOCKER_CONFIG"),
        description="The Docker CLI's configuration folder holding registry credentials "
        "(config.json); unset means ~/.docker.",
    )
    credentials_refresh_margin_seconds: float = Field(
        default=300,
        ge=0,
        description="Fetch a new session this long before its AWS credentials expire.",
    )
    policy_bind_allow_list: bool = Field(
        default=False,
        description="Only allow host paths inside the application's own folder (and the "
        "outside_allow_list:<path> entries of its bypass list).",
    )
    policy_bypass: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "Per application (id or name): security-policy rule ids it is excused from, as JSON, "
            'e.g. {"monitoring": ["docker_socket"]}.'
        ),
    )

    @classmethod
    def load(cls, env_file: Path | None = None) -> AgentConfig:
        """The settings from the environment, over those in `env_file` (ValidationError when one
        is missing or invalid)."""
        sources = [_lowered(os.environ)]
        if env_file is not None:
            sources.append(_lowered(dotenv_values(env_file)))
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            names = alias.choices if isinstance(alias, AliasChoices) else [ENV_PREFIX + name]
            found = next(
                (s[str(n).lower()] for s in sources for n in names if str(n).lower() in s), None
            )
            if found is None:
                continue
            if get_origin(field.annotation) in (dict, list):
                try:
                    values[name] = json.loads(found)
                    continue
                except ValueError:
                    pass  # left as text: validation says what is wrong with it
            values[name] = found
        return cls.model_validate(values)


def _lowered(variables: Mapping[str, str | None]) -> dict[str, str]:
    return {name.lower(): value for name, value in variables.items() if value is not None}
