"""EventBridge schedule (every minute) → queue syncs of the polling repositories that are due."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from ferry.sync.polling import poll_due_repositories

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"queued": poll_due_repositories()}
