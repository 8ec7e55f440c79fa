"""Request and response bodies (snake_case JSON). Status fields a client sends are ignored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ferry.domain.models import (
    ApplicationSyncStatus,
    CredentialKind,
    EventStatus,
    EventType,
    HealthStatus,
    ImageUpdates,
    Provider,
    RepositoryCredentials,
    RepositorySyncStatus,
    SyncType,
    Trigger,
)


class CredentialsIn(BaseModel):
    """How Ferry authenticates to the repository. Stored encrypted; never shown again."""

    model_config = ConfigDict(extra="forbid")

    kind: CredentialKind
    username: str | None = None
    secret: str = Field(min_length=1, repr=False)

    def to_domain(self) -> RepositoryCredentials:
        return RepositoryCredentials(kind=self.kind, username=self.username, secret=self.secret)


class RepositoryIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(description="A git URL, a local path or a file:// URL.")
    provider: Provider = Provider.GIT
    sync_type: SyncType = SyncType.WEBHOOK
    polling_interval_seconds: int = Field(default=60, description="At least 30.")
    auth: CredentialsIn | None = None
    github_actions: bool = Field(
        default=False, description="Let GitHub Actions runs sync it (POST /github-actions)."
    )
    github_repository: str | None = Field(
        default=None,
        description="owner/repo on GitHub, for Actions runs (when the URL does not say).",
    )
    actions_branches: list[str] | None = Field(
        default=None, description="Branches whose Actions runs may sync (none: any)."
    )
    actions_workflows: list[str] | None = Field(
        default=None, description="Workflows (owner/repo/.github/workflows/x.yml) that may sync."
    )


class RepositoryPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    provider: Provider | None = None
    sync_type: SyncType | None = None
    polling_interval_seconds: int | None = None
    github_actions: bool | None = None
    github_repository: str | None = None
    actions_branches: list[str] | None = None
    actions_workflows: list[str] | None = None
    auth: CredentialsIn | None = Field(
        default=None, description='New credentials; send `"auth": null` to remove them.'
    )


class RepositoryOut(BaseModel):
    id: str
    url: str
    provider: Provider
    sync_type: SyncType
    polling_interval_seconds: int
    sync_status: RepositorySyncStatus
    last_sync_error: str | None
    last_synced_at: datetime | None
    has_credentials: bool
    github_actions: bool
    github_repository: str | None
    github_repository_id: str | None
    actions_branches: list[str] | None
    actions_workflows: list[str] | None
    created_at: datetime
    updated_at: datetime


class WebhookSecret(BaseModel):
    webhook_url: str = Field(description="Where senders POST pushes.")
    webhook_secret: str = Field(description="Shown once, now; Ferry never shows it again.")


class RepositoryCreated(RepositoryOut, WebhookSecret):
    pass


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str


class AgentOut(BaseModel):
    id: str
    name: str
    online: bool = Field(description="Heard from within the offline threshold (90 s).")
    last_seen_at: datetime | None
    created_at: datetime


class AgentToken(BaseModel):
    token: str = Field(description="Shown once, now: the agent's FERRY_AGENT_TOKEN.")


class AgentCreated(AgentOut, AgentToken):
    pass


class ImageWebhook(BaseModel):
    webhook_url: str = Field(
        description="Where registries POST image pushes; it holds the token: shown once, now."
    )
    token: str = Field(description="Also the secret that signs GitHub's package deliveries.")


class ApplicationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    repository_id: str
    agent_id: str
    branch: str = "main"
    path: str = Field(description="Path of the compose file inside the repository.")
    root: str | None = Field(
        default=None,
        description="The directory that ships with the compose file (its bundle), when it is not "
        "the compose file's own: a parent of it, `.` for the repository root.",
    )
    notification_ids: list[str] = Field(default_factory=list)
    image_updates: ImageUpdates = Field(
        default=ImageUpdates.OFF,
        description="When a running image's tag moves in its registry: `off`, `notify` the "
        "targets, or `deploy` it (one image redeploy a minute at most).",
    )
    self_heal: bool = Field(
        default=False,
        description="Redeploy when the host drifts from what was deployed (at most 3 times "
        "in 10 minutes).",
    )


class ApplicationPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    branch: str | None = None
    path: str | None = None
    root: str | None = Field(
        default=None, description='`""` goes back to the compose file\'s own directory.'
    )
    agent_id: str | None = None
    notification_ids: list[str] | None = None
    image_updates: ImageUpdates | None = None
    self_heal: bool | None = Field(
        default=None, description="`true` also resumes healing the flap guard stopped."
    )


class ApplicationOut(BaseModel):
    id: str
    name: str
    project_name: str = Field(
        description="The compose project on its agent: fixed at creation, kept across renames."
    )
    repository_id: str
    agent_id: str
    branch: str
    path: str
    root: str | None = Field(
        description="The directory that ships with the compose file; null: the file's own."
    )
    bundle_digest: str | None = Field(
        description="The content address of the bundle the target commit ships (what changed "
        "when it changes)."
    )
    sync_status: ApplicationSyncStatus
    health_status: HealthStatus
    commit: str | None = Field(description="What the host runs (written by a successful deploy).")
    commit_message: str | None
    target_commit: str | None = Field(
        description="The commit being deployed (while syncing) or that last failed to land."
    )
    target_commit_message: str | None
    pinned_commit: str | None = Field(
        description="Set by a rollback: pushes are recorded, not deployed, until unpinned."
    )
    removing: bool = Field(description="A delete was accepted and is under way.")
    last_synced_at: datetime | None
    last_sync_error: str | None
    notification_ids: list[str]
    image_updates: ImageUpdates
    self_heal: bool
    self_heal_stopped_at: datetime | None = Field(
        description="When the flap guard stopped healing (null while healing works)."
    )
    created_at: datetime
    updated_at: datetime


class ApplicationCreated(ApplicationOut):
    job_id: str = Field(description="The first sync's job.")


class ApplicationChanged(ApplicationOut):
    job_id: str | None = Field(default=None, description="The sync a changed branch/path queued.")


class ApplicationEventOut(BaseModel):
    id: str
    seq: int
    type: EventType
    trigger: Trigger
    status: EventStatus
    commit: str | None
    message: str | None
    error: str | None
    actor: str | None
    request_id: str | None
    created_at: datetime
    finished_at: datetime | None


class EventPage(BaseModel):
    items: list[ApplicationEventOut]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


class Removing(BaseModel):
    status: str = "removing"
    request_id: str


class DeployStarted(BaseModel):
    request_id: str


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commit: str | None = Field(
        default=None,
        description="The full SHA to go back to; default: the last commit that deployed "
        "successfully before the current one.",
    )
    reason: str | None = Field(default=None, max_length=500, description="Kept in the history.")


class RollbackStarted(BaseModel):
    commit: str = Field(description="The commit the application is now pinned at.")
    job_id: str = Field(description="The sync job that deploys it.")


class JobsAccepted(BaseModel):
    job_ids: list[str]


class JobAccepted(BaseModel):
    job_id: str
    branch: str | None = None
    commit: str | None = None


class NotificationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    url: str = Field(description="An apprise URL (discord://, slack://, json://, mailto://, ...).")


class NotificationPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    url: str | None = None


class NotificationOut(BaseModel):
    id: str
    name: str
    display_url: str = Field(description="The URL with its secrets redacted.")
    last_status: str | None
    last_error: str | None
    last_sent_at: datetime | None
    created_at: datetime


class NotificationTestResult(BaseModel):
    ok: bool
    error: str | None = None


class Health(BaseModel):
    status: str = "ok"
    version: str


class ExecutionOut(BaseModel):
    name: str
    status: str = Field(description="RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.")
    path: list[str] = Field(description="The states entered, in order.")


class JobOut(BaseModel):
    id: str
    repository_id: str
    trigger: Trigger
    status: str = Field(
        description="queued, running, succeeded or failed; superseded (it never ran: a newer "
        "job of its branch does what it would have)."
    )
    branch: str | None = None
    commit: str | None = None
    actor: str | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    created_at: datetime
    finished_at: datetime | None = None
    execution: ExecutionOut | None = Field(
        default=None, description="The job's repository-sync execution (None until it starts)."
    )
