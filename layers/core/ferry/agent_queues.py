"""Each agent's own SQS queue, where its deploy jobs wait (created with the agent)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from ferry import aws
from ferry.errors import TransientError
from ferry.settings import get_settings


def agent_queue_name(agent_id: str) -> str:
    return f"{get_settings().agent_queue_prefix}{agent_id}"


def ensure_agent_queue(agent_id: str) -> str:
    """Create the agent's queue if needed; returns its URL (CreateQueue is idempotent)."""
    settings = get_settings()
    try:
        response = aws.sqs().create_queue(
            QueueName=agent_queue_name(agent_id),
            Attributes={
                # A job older than the deploy timeout has already ended its execution.
                "MessageRetentionPeriod": str(max(60, settings.deploy_timeout_seconds)),
                "ReceiveMessageWaitTimeSeconds": "20",
            },
        )
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not create the agent's queue: {exc}") from exc
    return response["QueueUrl"]
