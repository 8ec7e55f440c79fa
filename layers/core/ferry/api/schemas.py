"""Request and response bodies (snake_case JSON)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ferry.domain.models import (
    ApplicationSyncStatus,
    EventStatus,
    EventType,
    HealthStatus,
    Provider,
    RepositorySyncStatus,
    SyncOrigin,
    SyncType,
)


class RepositoryIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(description="A git URL, a local path or a file:// URL.")
    provider: Provider = Provider.GIT
    sync_type: SyncType = SyncType.WEBHOOK
    polling_interval_seconds: int = Field(default=60, description="At least 30.")


class RepositoryOut(BaseModel):
    id: str
    url: str
    provider: Provider
    sync_type: SyncType
    polling_interval_seconds: int
    sync_status: RepositorySyncStatus
    last_sync_error: str | None
    last_synced_at: datetime | None
    created_at: datetime
    updated_at: datetime


class RepositoryCreated(RepositoryOut):
    webhook_url: str = Field(description="Where senders POST pushes.")
    webhook_secret: str = Field(description="Shown once, now; Ferry never shows it again.")


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str


class AgentOut(BaseModel):
    id: str
    name: str
    last_seen_at: datetime | None
    created_at: datetime


class AgentCreated(AgentOut):
    token: str = Field(description="Shown once, now: the agent's FERRY_AGENT_TOKEN.")


class AgentSession(BaseModel):
    """What an agent needs to take its jobs: its queue and, locally, the AWS endpoint."""

    agent_id: str
    name: str
    queue_url: str
    region: str
    aws_endpoint_url: str | None


class ApplicationIn(BaseModel):
    # Status fields a client sends are ignored, not applied.
    model_config = ConfigDict(extra="ignore")

    name: str
    repository_id: str
    agent_id: str
    branch: str = "main"
    path: str = Field(description="Path of the compose file inside the repository.")


class ApplicationOut(BaseModel):
    id: str
    name: str
    project_name: str
    repository_id: str
    agent_id: str
    branch: str
    path: str
    sync_status: ApplicationSyncStatus
    health_status: HealthStatus
    commit: str | None
    commit_message: str | None
    last_synced_at: datetime | None
    last_sync_error: str | None
    created_at: datetime
    updated_at: datetime


class ApplicationCreated(ApplicationOut):
    job_id: str = Field(description="The first sync's job.")


class ApplicationEventOut(BaseModel):
    id: str
    type: EventType
    source: SyncOrigin
    status: EventStatus
    commit: str | None
    message: str | None
    error: str | None
    request_id: str | None
    created_at: datetime
    finished_at: datetime | None


class JobAccepted(BaseModel):
    job_id: str
    branch: str | None = None
    commit: str | None = None


class Health(BaseModel):
    status: str = "ok"
    version: str
