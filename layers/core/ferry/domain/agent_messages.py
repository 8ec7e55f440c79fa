"""What travels between the control plane and an agent: deploy and undeploy requests with their
results, the agent session contract, and the agent's reports.

The agent imports this module, never the control plane's records (`ferry.domain.models`) or its
sync jobs (`ferry.domain.messages`, which re-exports everything here): an agent idles on a host
for days and keeps every class it imported in memory. So this module depends on pydantic and the
standard library only, and the status values that cross the wire are defined here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class HealthStatus(StrEnum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class ImageUpdates(StrEnum):
    """What a moved registry digest of a running image does to its application."""

    OFF = "off"
    NOTIFY = "notify"  # tell the notification targets
    DEPLOY = "deploy"  # redeploy the recorded commit with fresh pulls


class BundleObject(BaseModel):
    """Where the agent reads a bundle that does not travel inline: an object of the stack's
    bundle bucket its session credentials may read (its own `requests/<agent id>/` prefix)."""

    bucket: str
    key: str


class BundleRef(BaseModel):
    """The application's directory at the commit (ferry/domain/bundle.py): its digest, where it
    sits in the repository (`root`, "" for the repository root; the compose file is at
    `compose_path` below it), how many files of how many bytes it holds (the agent refuses an
    archive holding more), and its archive (a gzipped tar), either inline as base64 or as an
    object of the bundle bucket."""

    digest: str
    root: str
    files: int
    size: int
    archive_size: int
    inline: str | None = Field(default=None, repr=False)
    object: BundleObject | None = None


class DeployRequest(BaseModel):
    """What the agent receives to deploy (inside the SQS message, next to the task token).

    `compose_file` is the compose file at `compose_path`; `bundle` its whole directory (absent
    from requests of earlier versions, which ship the compose file alone)."""

    kind: Literal["deploy"] = "deploy"
    request_id: str
    application_id: str
    application_name: str
    project_name: str
    commit: str
    compose_path: str
    compose_file: str = Field(repr=False)
    heartbeat_seconds: int
    pull: bool = Field(
        default=False,
        description="Fetch every image even if this host has it: a pull that fails fails the "
        "deploy (an image update must not end running the old image).",
    )
    bundle: BundleRef | None = None


class UndeployRequest(BaseModel):
    """What the agent receives to tear an application's project down (application deleted)."""

    kind: Literal["undeploy"] = "undeploy"
    request_id: str
    application_id: str
    project_name: str
    heartbeat_seconds: int


AgentRequest = Annotated[DeployRequest | UndeployRequest, Field(discriminator="kind")]


class DeployMessage(BaseModel):
    """The SQS message body DispatchToAgent sends (deploy or undeploy)."""

    task_token: str
    request: AgentRequest


class AgentAnswer(BaseModel):
    """What every answer of the agent to a job says: which request, and whether it worked."""

    model_config = ConfigDict(extra="ignore")

    request_id: str
    application_id: str
    success: bool
    error_message: str | None = None


class UndeployResult(AgentAnswer):
    """The agent's answer to an undeploy job."""


class ContainerState(BaseModel):
    """One container of a deployed project, as the agent saw it after `up`."""

    name: str
    service: str | None = None
    state: str
    health: str | None = None
    image: str | None = None
    image_digest: str | None = None


class DeployResult(AgentAnswer):
    """The agent's answer to a deploy job (the task token's success output)."""

    health: HealthStatus = HealthStatus.UNKNOWN
    containers: list[ContainerState] = Field(default_factory=list)
    image_digests: dict[str, str] = Field(default_factory=dict)


# The agent session contract: GET/POST /api/v1/agent/... answer and accept these.


class AwsCredentials(BaseModel):
    """Short-lived credentials limited to the agent's own queue and to answering its tasks."""

    access_key_id: str
    secret_access_key: str = Field(repr=False)
    session_token: str = Field(repr=False)
    expiration: datetime


class AgentSession(BaseModel):
    """What an agent needs to take its deploy requests: its queue, scoped credentials and,
    locally, the AWS endpoint. Fetch it again before `credentials.expiration`."""

    agent_id: str
    name: str
    queue_url: str
    region: str
    aws_endpoint_url: str | None = None
    credentials: AwsCredentials | None = Field(
        default=None,
        description="None when the control plane has no agent role configured (the agent then "
        "uses its own AWS credentials).",
    )


# The agent's exit status when the API refuses its token (rotated or revoked): whoever runs the
# agent learns that it needs a new token, not just a restart.
AGENT_EXIT_TOKEN_REFUSED = 3


class RequestState(BaseModel):
    """Whether a deploy request is still its application's current one."""

    request_id: str
    current: bool = Field(description="False once the deploy was cancelled or superseded.")


class HealthReport(BaseModel):
    """An agent's report that an application's settled health changed."""

    model_config = ConfigDict(extra="ignore")

    application_id: str
    health_status: HealthStatus
    detail: str | None = None


class AgentApplication(BaseModel):
    """One of the agent's applications with what the agent watches for it."""

    application_id: str
    project_name: str
    image_updates: ImageUpdates


class DriftReport(BaseModel):
    """An agent's report that what runs differs from what it deployed (or no longer does)."""

    model_config = ConfigDict(extra="ignore")

    application_id: str
    commit: str | None = Field(default=None, description="The commit the agent deployed.")
    differences: list[str] = Field(
        default_factory=list,
        description='What differs, e.g. "web stopped"; empty: back at the deployed state.',
        max_length=50,
    )


class ImageChange(BaseModel):
    """A service whose image tag now names another digest in its registry."""

    service: str
    image: str = Field(description="The reference the service runs, e.g. registry/app:latest.")
    running_digest: str
    registry_digest: str

    def describe(self) -> str:
        """E.g. "web: registry/app:latest sha256:1a2b3c4d5e6f → sha256:6f5e4d3c2b1a"."""
        moved = f"{_short(self.running_digest)} → {_short(self.registry_digest)}"
        return f"{self.service}: {self.image} {moved}"


def _short(digest: str) -> str:
    algorithm, _, value = digest.rpartition("@")[2].partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest[:19]


class ImageReport(BaseModel):
    """An agent's image check of one application: the services whose digest moved, or why the
    check could not be made."""

    model_config = ConfigDict(extra="ignore")

    application_id: str
    changes: list[ImageChange] = Field(default_factory=list, max_length=50)
    error: str | None = None


class ImageReportAnswer(BaseModel):
    """What the control plane did with an image report."""

    action: Literal["deployed", "notified", "debounced", "recorded", "ignored"]
    request_id: str | None = None
    retry_after_seconds: int | None = Field(
        default=None, description="With `debounced`: report again after this long."
    )


class ImageCheckHint(BaseModel):
    """Put on an agent's queue by the image webhook: check these images now (no task token:
    nothing waits for an answer)."""

    kind: Literal["check_images"] = "check_images"
    images: list[str] = Field(
        default_factory=list, description="References to check; empty: every watched image."
    )
