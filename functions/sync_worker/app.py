"""SQS (FIFO) sync jobs → run_sync_job, once per job.

Records of one repository arrive in order; a failed record stops its group's remaining records
(they are retried, and after five receives land in the dead-letter queue). The job id — derived
from the business event (delivery id, or repository + branch + commit) — is the idempotency key,
so a repeated trigger returns the first run's result instead of syncing again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.sqs_fifo_partial_processor import (
    SqsFifoPartialProcessor,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from ferry.aws.metrics import metrics, record_sync_duration
from ferry.aws.tracing import tracer
from ferry.domain.messages import SyncJob
from ferry.settings import get_settings
from ferry.sync.run import run_sync_job

logger = Logger()
# A failed record holds back only its own repository's later records; other repositories go on.
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
# Report every failed record instead of failing the invocation, also when all of them fail.
processor.raise_on_entire_batch_failure = False
idempotency = IdempotencyConfig(event_key_jmespath="job_id", expires_after_seconds=3600)


def _run(job: SyncJob) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        report = run_sync_job(job)
    finally:
        # Every run of a job, also one that fails; a repeat answered by idempotency runs nothing.
        record_sync_duration((time.perf_counter() - started) * 1000)
    return report.summary() if report else {"skipped": True}


@cache
def sync_once() -> Callable[..., dict[str, Any]]:
    """`_run`, once per job id. Built on first use: its DynamoDB client must not be created at
    import time (before configuration is final)."""
    persistence = DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table)
    decorate = idempotent_function(
        data_keyword_argument="job", persistence_store=persistence, config=idempotency
    )
    return cast(Callable[..., dict[str, Any]], decorate(_run))


def record_handler(record: SQSRecord) -> None:
    job = SyncJob.model_validate_json(record.body)
    logger.append_keys(job_id=job.job_id, repository_id=job.repository_id)
    sync_once()(job=job)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
