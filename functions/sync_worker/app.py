"""SQS (FIFO) sync jobs → one repository-sync execution per job (named after the job).

The execution name is the idempotency key: a repeated job (SQS redelivery, a retried batch) finds
its execution already started and starts nothing. Records of one repository arrive in order; a
record whose execution could not be started stops its group's remaining records (they are
retried, and after five receives land in the dead-letter queue, which the poller's sweep reads).
A job that a newer one of its branch behind it in the same receive makes needless ends
superseded without a read (`superseded_in_receive`): a burst's jobs arrive together.
"""

from __future__ import annotations

from ferry.import_phase import collector_paused

with collector_paused():
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.batch import process_partial_response
    from aws_lambda_powertools.utilities.batch.sqs_fifo_partial_processor import (
        SqsFifoPartialProcessor,
    )
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from ferry.aws.handlers import lambda_handler
    from ferry.domain.messages import SyncJob
    from ferry.sync.queue import start_sync_execution, superseded_in_receive

logger = Logger()
# A failed record holds back only its own repository's later records; other repositories go on.
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
# Report every failed record instead of failing the invocation, also when all of them fail.
processor.raise_on_entire_batch_failure = False


def _received(event: dict[str, Any]) -> dict[str, tuple[SyncJob, bool]]:
    """Each record's job and whether this is its first receive, by message id, in queue order.
    A record whose body is not a job is left out here; it fails when it is handled."""
    received = {}
    for record in event.get("Records") or []:
        try:
            job = SyncJob.model_validate_json(record["body"])
        except (KeyError, TypeError, ValueError):
            continue
        receives = (record.get("attributes") or {}).get("ApproximateReceiveCount")
        received[record["messageId"]] = (job, receives == "1")
    return received


@lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    received = _received(event)
    superseded = superseded_in_receive(list(received.values()))

    def record_handler(record: SQSRecord) -> None:
        parsed = received.get(record.message_id)
        # Not parsed: validating it again raises the record's own error.
        job = parsed[0] if parsed else SyncJob.model_validate_json(record.body)
        logger.append_keys(job_id=job.job_id, repository_id=job.repository_id)
        start_sync_execution(job, newer_in_receive=superseded.get(job.job_id))

    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
