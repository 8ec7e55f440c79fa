"""The sync-jobs queue: every trigger ends here, and the sync worker starts from here.

The queue is FIFO with one message group per repository (one sync of a repository in flight at
a time, in order); the job id is the deduplication id, so a repeated trigger within SQS's
five-minute window is dropped by SQS itself.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from ferry import aws
from ferry.domain.messages import SyncJob
from ferry.errors import TransientError
from ferry.settings import get_settings
from ferry.store.jobs import forget_job, record_queued


def enqueue_sync_job(job: SyncJob) -> str:
    """Record and queue a sync job; returns its job id (the existing one for a duplicate)."""
    if not record_queued(job):
        return job.job_id  # the same event was queued before: nothing new to do
    try:
        aws.sqs().send_message(
            QueueUrl=get_settings().sync_queue_url,
            MessageBody=job.model_dump_json(),
            MessageGroupId=job.repository_id,
            MessageDeduplicationId=job.job_id,
        )
    except (BotoCoreError, ClientError) as exc:
        forget_job(job.job_id)  # so that the sender's retry queues it again
        raise TransientError(f"could not queue sync job: {exc}") from exc
    return job.job_id
