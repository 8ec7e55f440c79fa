"""The records Ferry keeps and the status values of its two layers (docs/architecture.md).

Layer 1, repository sync: did we dispatch the new commit? (`RepositorySyncStatus`)
Layer 2, application deploy: is the host running that commit?
(`ApplicationSyncStatus`, `HealthStatus`)
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Defined with the agent's wire format, which the agent imports without these records.
from ferry.domain.agent_messages import HealthStatus as HealthStatus
from ferry.domain.agent_messages import ImageUpdates as ImageUpdates
from ferry.domain.naming import compose_project_name


def utcnow() -> datetime:
    """Timezone-aware now; every timestamp Ferry stores is UTC."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A short, URL- and execution-name-safe identifier such as `app_3f9c2a1b7d4e5f60`."""
    return f"{prefix}_{secrets.token_hex(8)}"


class RepositorySyncStatus(StrEnum):
    UNKNOWN = "unknown"
    SYNCING = "syncing"
    SUCCESS = "success"
    FAILED = "failed"


class ApplicationSyncStatus(StrEnum):
    UNKNOWN = "unknown"
    SYNCING = "syncing"
    SYNCED = "synced"
    OUT_OF_SYNC = "out_of_sync"


class Provider(StrEnum):
    """Where a repository lives. `git` is any git URL (https, ssh) or local path, read with git
    itself; the others are read through the provider's REST API."""

    GIT = "git"
    GITHUB = "github"
    GITLAB = "gitlab"
    GITEA = "gitea"
    FORGEJO = "forgejo"
    AZURE_DEVOPS = "azure_devops"


class SyncType(StrEnum):
    """Which automatic trigger a repository listens to (a manual sync is always possible)."""

    POLLING = "polling"
    WEBHOOK = "webhook"
    MANUAL = "manual"


class Trigger(StrEnum):
    """Why a sync or deploy happened: one word across sync jobs, deploy requests, application
    events and the API (`trigger`)."""

    WEBHOOK = "webhook"
    GITHUB_ACTIONS = "github_actions"
    POLLING = "polling"
    MANUAL = "manual"
    APPLICATION_CREATED = "application_created"
    # Decided on the host's behalf: a registry moved an image tag, the agent saw the host differ
    # from what was deployed, or healed that difference.
    IMAGE_UPDATE = "image_update"
    DRIFT = "drift"
    SELF_HEAL = "self_heal"

    @classmethod
    def _missing_(cls, value: object) -> Trigger | None:
        # Names of earlier versions, still in stored history and in jobs queued before an upgrade.
        return {"repository_polling": cls.POLLING, "repository_webhook": cls.WEBHOOK}.get(
            str(value)
        )


class EventType(StrEnum):
    COMMIT_SYNC = "commit_sync"
    DEPLOYMENT = "deployment"
    PIN = "pin"  # a rollback pinned the application, or an unpin released it
    DRIFT = "drift"  # the host differs from what was deployed (failed), or is back (succeeded)
    IMAGE_UPDATE = "image_update"  # a registry digest moved (notified), or could not be read


class EventStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NO_CHANGE = "no_change"
    IGNORED = "ignored"  # nothing deployed on purpose (an older commit, a push while pinned)


class CredentialKind(StrEnum):
    TOKEN = "token"  # noqa: S105 - HTTPS with a token (provider APIs, or as the password)
    BASIC = "basic"  # HTTPS with username and password
    SSH_KEY = "ssh_key"  # a deploy key (PEM private key)


class RepositoryCredentials(BaseModel):
    """How Ferry authenticates to a repository; stored encrypted, never returned."""

    kind: CredentialKind
    username: str | None = None
    secret: str = Field(repr=False)


class Repository(BaseModel):
    """A git repository Ferry watches. Its status is layer 1 only: dispatch, not deploy."""

    id: str
    url: str
    provider: Provider = Provider.GIT
    sync_type: SyncType = SyncType.WEBHOOK
    polling_interval_seconds: int = 60
    sync_status: RepositorySyncStatus = RepositorySyncStatus.UNKNOWN
    last_sync_error: str | None = None
    last_synced_at: datetime | None = None
    sync_started_at: datetime | None = None  # the latest attempt's move to `syncing`
    sync_job_id: str | None = None  # the latest attempt's sync job
    polled_at: datetime | None = None
    failures: int = 0
    # GitHub Actions runs may sync this repository (opt-in; see `github_actions_enabled`).
    github_actions: bool = False
    github_repository_id: str | None = None
    github_repository: str | None = None
    actions_branches: list[str] | None = None
    actions_workflows: list[str] | None = None
    has_credentials: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Agent(BaseModel):
    """A host that runs applications; it takes deploy jobs from its own queue."""

    id: str
    name: str
    queue_url: str
    last_seen_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Application(BaseModel):
    """One compose file in one repository, on one branch, deployed by one agent.

    `commit` is what the host runs: only a successful deploy writes it. `target_commit` is the
    commit Ferry wants the host at (written with `syncing` when its deploy starts; it stays after
    a failure, so `out_of_sync` can say what did not land). `compose_file` and the bundle
    (`bundle_digest`: the directory that ships, see ferry/domain/bundle.py) belong to the target.
    `root` names that directory when it is not the compose file's own ("." for the repository
    root).
    """

    id: str
    name: str
    repository_id: str
    agent_id: str
    branch: str
    path: str
    root: str | None = None
    # The compose project on the agent, fixed when the application is created: a rename keeps
    # it, so one application is one project for its whole life. Records from before it was
    # stored run as their name's project.
    project_name: str = ""
    sync_status: ApplicationSyncStatus = ApplicationSyncStatus.UNKNOWN
    health_status: HealthStatus = HealthStatus.UNKNOWN
    commit: str | None = None
    commit_message: str | None = None
    target_commit: str | None = None
    target_commit_message: str | None = None
    # Set by a rollback: the application stays at this commit until it is unpinned.
    pinned_commit: str | None = None
    last_synced_at: datetime | None = None
    last_sync_error: str | None = None
    compose_file: str | None = None
    previous_compose_file: str | None = None
    bundle_digest: str | None = None
    # The deploy request (execution name) whose result may still change this application, and
    # the trigger it runs for (so a request whose execution never started can be started again).
    current_request_id: str | None = None
    current_trigger: Trigger | None = None
    # Set once a delete is accepted: nothing may deploy the application any more.
    removal_request_id: str | None = None
    notification_ids: list[str] = Field(default_factory=list)
    image_updates: ImageUpdates = ImageUpdates.OFF
    self_heal: bool = False
    # Automation state: the last image-update redeploy (one a minute), the recent self-heals
    # (the flap guard's window) and when the guard stopped healing.
    image_deployed_at: datetime | None = None
    self_heal_at: list[datetime] = Field(default_factory=list)
    self_heal_stopped_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _project_of_older_records(self) -> Application:
        if not self.project_name:
            self.project_name = compose_project_name(self.name)
        return self

    @property
    def desired_commit(self) -> str | None:
        """The commit the application should run: its target, else what it runs."""
        return self.target_commit or self.commit


class ApplicationEvent(BaseModel):
    """One entry of an application's history (a commit sync, a deployment, drift on its host,
    an image update)."""

    id: str = Field(default_factory=lambda: new_id("evt"))
    seq: int = 0  # its number in the application's history (assigned when stored)
    application_id: str
    type: EventType
    trigger: Trigger
    status: EventStatus
    commit: str | None = None
    message: str | None = None
    error: str | None = None
    actor: str | None = None
    request_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class CommitInfo(BaseModel):
    """A resolved commit of a branch."""

    model_config = ConfigDict(frozen=True)

    sha: str
    message: str = ""
