"""The sync-jobs queue: every trigger ends here, and the sync worker starts from here."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from ferry import aws
from ferry.domain.messages import SyncJob
from ferry.errors import TransientError
from ferry.settings import get_settings


def enqueue_sync_job(job: SyncJob) -> str:
    """Put a sync job on the queue; returns its job id."""
    try:
        aws.sqs().send_message(
            QueueUrl=get_settings().sync_queue_url, MessageBody=job.model_dump_json()
        )
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not queue sync job: {exc}") from exc
    return job.job_id
