"""What travels between the control plane and the outside: sync jobs (layer 1), deploy and
undeploy requests with their results (layer 2), and the agent session contract.

Words: a *sync job* is what a trigger puts on the sync-job queue; a *deploy request* is one
(application, commit, trigger) deploy, run as one execution named by its `request_id` and handed
to the agent. What an agent sends and receives is defined in `ferry.domain.agent_messages` (the
agent imports that module alone, so the two sides cannot drift apart) and re-exported here.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import AliasChoices, BaseModel, Field

from ferry.domain.agent_messages import (
    AGENT_EXIT_TOKEN_REFUSED,
    AgentApplication,
    AgentRequest,
    AgentSession,
    AwsCredentials,
    BundleObject,
    BundleRef,
    ContainerState,
    DeployMessage,
    DeployRequest,
    DeployResult,
    DriftReport,
    HealthReport,
    ImageChange,
    ImageCheckHint,
    ImageReport,
    ImageReportAnswer,
    RequestState,
    UndeployRequest,
    UndeployResult,
)
from ferry.domain.models import Trigger, new_id, utcnow

__all__ = [
    "AGENT_EXIT_TOKEN_REFUSED",
    "AgentApplication",
    "AgentRequest",
    "AgentSession",
    "AwsCredentials",
    "BundleObject",
    "BundleRef",
    "ContainerState",
    "DeployInput",
    "DeployMessage",
    "DeployRequest",
    "DeployResult",
    "DriftReport",
    "HealthReport",
    "ImageChange",
    "ImageCheckHint",
    "ImageReport",
    "ImageReportAnswer",
    "RequestState",
    "SyncJob",
    "UndeployInput",
    "UndeployRequest",
    "UndeployResult",
]


class SyncJob(BaseModel):
    """A request to sync one repository, put on the sync-jobs queue by a trigger.

    `branch` narrows the sync to the applications tracking that branch, `application_id` to one
    application (a rollback, an unpin). Without `commit` each branch's head is resolved from the
    repository itself (a delivery only says that a branch moved). A named `commit` (a generic
    webhook's, a GitHub Actions run's) is deployed only where it is the head or descends from
    what the application runs; a rollback names the commit its application is pinned at.

    A job that names a business event (a delivery id, or a repository + branch + commit) gets an
    id derived from it, so a repeated trigger is the same job: SQS deduplicates it and the sync
    worker's idempotency returns the first run's result instead of syncing again. A commit named
    again after its job finished is a new job (see `ferry.sync.queue.enqueue_sync_job`).
    """

    job_id: str = ""
    repository_id: str
    # Jobs queued by earlier versions call it `origin`.
    trigger: Trigger = Field(validation_alias=AliasChoices("trigger", "origin"))
    branch: str | None = None
    application_id: str | None = None
    commit: str | None = None
    # A pushed tag: the sync moves the branches that contain `commit`, each to its head.
    tag: str | None = None
    delivery_id: str | None = None
    actor: str | None = None
    requested_at: datetime = Field(default_factory=utcnow)

    def model_post_init(self, _context: object) -> None:
        if not self.job_id:
            key = self.business_key()
            self.job_id = (
                f"job_{hashlib.sha256(key.encode()).hexdigest()[:16]}" if key else new_id("job")
            )

    def business_key(self) -> str | None:
        """What makes two triggers the same event, or None when every trigger is its own."""
        if self.delivery_id:
            return f"delivery:{self.repository_id}:{self.delivery_id}"
        if self.commit:
            scope = f"{self.branch}:{self.application_id}" if self.application_id else self.branch
            if self.tag:
                scope = f"tag:{self.tag}"
            return f"commit:{self.repository_id}:{scope}:{self.commit}"
        return None


class DeployInput(BaseModel):
    """The deploy state machine's execution input."""

    application_id: str
    request_id: str
    commit: str
    commit_message: str | None = None
    trigger: Trigger = Field(validation_alias=AliasChoices("trigger", "origin"))
    agent_queue_url: str
    timeout_seconds: int
    heartbeat_seconds: int
    actor: str | None = None
    # Why an automatic deploy runs (which images moved, what drifted): said in its history event.
    reason: str | None = None


class UndeployInput(BaseModel):
    """The undeploy state machine's execution input."""

    application_id: str
    request_id: str
    agent_queue_url: str
    timeout_seconds: int
    heartbeat_seconds: int
    request: UndeployRequest
    actor: str | None = None
