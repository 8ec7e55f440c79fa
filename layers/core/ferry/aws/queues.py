"""SQS: the sync-job queue every trigger sends to, and each agent's own queue of deploy
requests (created with the agent, deleted with it)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from ferry import aws
from ferry.domain.messages import ImageCheckHint, SyncJob
from ferry.errors import TransientError
from ferry.settings import get_settings


def send_sync_job(job: SyncJob) -> None:
    """Put a sync job on the FIFO sync-job queue: one message group per repository (one sync of
    a repository in flight, in order), the job id as deduplication id."""
    try:
        aws.sqs().send_message(
            QueueUrl=get_settings().sync_queue_url,
            MessageBody=job.model_dump_json(),
            MessageGroupId=job.repository_id,
            MessageDeduplicationId=job.job_id,
        )
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not queue sync job: {exc}") from exc


def agent_queue_name(agent_id: str) -> str:
    return f"{get_settings().agent_queue_prefix}{agent_id}"


def ensure_agent_queue(agent_id: str) -> str:
    """Create the agent's queue if needed; returns its URL (CreateQueue is idempotent)."""
    settings = get_settings()
    try:
        response = aws.sqs().create_queue(
            QueueName=agent_queue_name(agent_id),
            Attributes={
                # A request older than the deploy timeout has already ended its execution.
                "MessageRetentionPeriod": str(max(60, settings.deploy_timeout_seconds)),
                "ReceiveMessageWaitTimeSeconds": "20",
            },
        )
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not create the agent's queue: {exc}") from exc
    return response["QueueUrl"]


def delete_agent_queue(queue_url: str) -> None:
    try:
        aws.sqs().delete_queue(QueueUrl=queue_url)
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"the agent's queue could not be deleted: {exc}") from exc


def dead_sync_jobs(max_messages: int = 10) -> list[SyncJob]:
    """Sync jobs waiting in the sync queue's dead-letter queue (left there for operators to
    redrive: each is hidden for a while after it is read, so a sweep every minute reads new ones).
    Messages that are not sync jobs are skipped."""
    url = get_settings().sync_dead_letter_queue_url
    if not url:
        return []
    try:
        messages = (
            aws.sqs()
            .receive_message(QueueUrl=url, MaxNumberOfMessages=max_messages, VisibilityTimeout=300)
            .get("Messages", [])
        )
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not read the sync dead-letter queue: {exc}") from exc
    jobs = []
    for message in messages:
        try:
            jobs.append(SyncJob.model_validate_json(message["Body"]))
        except ValueError:
            continue
    return jobs


def send_agent_hint(queue_url: str, hint: ImageCheckHint) -> None:
    """Put a hint on an agent's own queue (no task token: nothing waits for an answer)."""
    try:
        aws.sqs().send_message(QueueUrl=queue_url, MessageBody=hint.model_dump_json())
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not reach the agent's queue: {exc}") from exc
