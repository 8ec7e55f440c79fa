"""What every Ferry Lambda's entry point wears, in this order: Powertools' Lambda context on
every log line, an X-Ray segment for the invocation, and the invocation's metrics flushed (EMF)
when it returns (the API's Mangum handler wears the last two only).

Loggers of one service share their formatter, so keys a module appends with its own `Logger()`
(`logger.append_keys(job_id=...)`) sit beside the context this one injects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger

from ferry.aws.metrics import metrics
from ferry.aws.tracing import tracer

Handler = TypeVar("Handler", bound=Callable[..., Any])

logger = Logger()


def lambda_handler(handler: Handler) -> Handler:
    """`handler` as a Lambda entry point (see the module's docstring)."""
    instrumented = tracer.capture_lambda_handler(metrics.log_metrics(handler))
    return cast(Handler, logger.inject_lambda_context(instrumented))
