"""The deploy and undeploy state machines' Lambda tasks.

An exception's class name is the error name the state machines catch.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from ferry.aws.metrics import metrics
from ferry.aws.tracing import tracer
from ferry.deploy import notify as notify_module
from ferry.deploy import progress, removal, result, slot

logger = Logger()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def mark_in_progress(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return progress.mark_in_progress(event)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def acquire_deploy_slot(event: dict[str, Any], context: LambdaContext) -> dict[str, bool]:
    return slot.acquire_slot(event)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def notify(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return notify_module.notify_outcome(event)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def apply_deploy_result(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return result.apply_deploy_result(event)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def apply_undeploy_result(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return removal.apply_undeploy_result(event)
