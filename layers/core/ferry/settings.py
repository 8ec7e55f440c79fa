"""Configuration, read from the environment (FERRY_* variables) in one place.

Lambda gets these from template.yaml; the local stack sets them from the same template after it
has deployed it into moto. Nothing else in the code reads os.environ for configuration.

Every field is one plain value from one variable, so a plain pydantic model reads them:
pydantic-settings loads all of its sources (dotenv, CLI parsing, cloud secret stores) when
imported, which lengthened every function's cold start by about half of what `import pydantic,
boto3` takes (`make bench`).
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

PREFIX = "FERRY_"


class Settings(BaseModel):
    """Control-plane settings; every field maps to an upper-case FERRY_ variable."""

    model_config = ConfigDict(extra="ignore")

    repositories_table: str = "ferry-repositories"
    applications_table: str = "ferry-applications"
    agents_table: str = "ferry-agents"
    application_events_table: str = "ferry-application-events"
    api_tokens_table: str = "ferry-api-tokens"
    name_guards_table: str = "ferry-name-guards"
    changes_table: str = "ferry-changes"
    counters_table: str = "ferry-counters"
    notification_targets_table: str = "ferry-notification-targets"
    jobs_table: str = "ferry-jobs"
    deliveries_table: str = "ferry-deliveries"

    sync_queue_url: str = ""
    sync_dead_letter_queue_url: str = ""  # the poller's sweep reads it
    sync_state_machine_arn: str = ""
    deploy_state_machine_arn: str = ""
    undeploy_state_machine_arn: str = ""
    agent_queue_prefix: str = "ferry-agent-"
    # The role agents' sessions assume (scoped down per agent); empty: agents bring credentials.
    agent_role_arn: str = ""
    agent_session_seconds: int = 3600

    # The master secret for encryption at rest and the name index (see security/crypto.py).
    secret_key: str = Field(default="", repr=False)
    previous_secret_keys: str = Field(default="", repr=False)  # comma-separated, read only
    secret_key_secret_arn: str = ""  # AWS: the Secrets Manager secret holding it

    deploy_timeout_seconds: int = Field(default=900, ge=1)
    deploy_heartbeat_seconds: int = Field(default=60, ge=1)
    # A repository `syncing` for longer than this is ended `failed` by the poller: its job can no
    # longer be running (the sync queue's visibility timeout times maxReceiveCount, 720 s * 5,
    # plus a margin), so it went to the dead-letter queue. template.yaml sets it for the poller.
    sync_stalled_after_seconds: int = Field(default=3900, ge=60)
    # An application `syncing` this long after its last write, whose deploy request has no
    # execution, had its start lost (a crash between recording the request and starting it):
    # the poller's sweep starts it again.
    deploy_start_grace_seconds: int = Field(default=60, ge=0)
    # Applications per Map iteration of the repository sync: a few transitions per batch, not per
    # application (template.yaml sets the Map's MaxConcurrency).
    sync_batch_size: int = Field(default=25, ge=1, le=200)
    # Applications of one batch synced at once: each is a few store round trips and a start of
    # its deploy execution, so the batch waits on the network, not on the CPU.
    sync_batch_workers: int = Field(default=8, ge=1, le=32)

    # How long DELETE /applications/{id} waits for the agent before answering 202.
    removal_wait_seconds: float = 20
    # An agent not heard from for this long is listed offline.
    agent_offline_after_seconds: int = 90
    # Every request body (413 past it).
    max_body_bytes: int = 1024 * 1024
    # Webhook deliveries: body limit and per-source rate (requests per minute).
    webhook_max_body_bytes: int = 1024 * 1024
    webhook_rate_per_minute: int = 120

    # GitHub Actions OIDC (GitHub Enterprise Server and tests override these).
    github_oidc_issuer: str = "https://token.actions.githubusercontent.com"
    github_oidc_jwks_url: str = ""

    # Deployment bundles (ferry/domain/bundle.py): an application's directory ships whole, up to
    # these limits (the files below its root, and their total size uncompressed).
    bundle_max_files: int = Field(default=256, ge=1)
    bundle_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    # A bundle whose compressed archive is at most this large is kept in its application's row
    # and travels inside the deploy request (SQS and Step Functions allow 256 KiB); a larger one
    # is kept in the bundle bucket and the agent reads it from there. 0 sends every bundle
    # through the bucket.
    bundle_inline_max_bytes: int = Field(default=64 * 1024, ge=0, le=128 * 1024)
    # The stack's bundle bucket (template.yaml BundleBucket).
    bundle_bucket: str = ""

    # Generic git (https/ssh) keeps a bare clone per repository here (Lambda can only write /tmp).
    git_cache_dir: str = "/tmp/ferry-git"  # noqa: S108 - a cache, rebuilt when missing

    # Where the API is reachable from outside (webhook URLs, agents). Locally the API's own URL.
    api_url: str = ""
    # Only set for the embedded local cloud: agents are told to talk to this endpoint, not AWS.
    aws_endpoint_url: str = ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from FERRY_* variables (any case, as pydantic-settings
    reads them); values are validated and converted by the model."""
    return Settings.model_validate(
        {
            name[len(PREFIX) :].lower(): value
            for name, value in os.environ.items()
            if name.upper().startswith(PREFIX)
        }
    )
