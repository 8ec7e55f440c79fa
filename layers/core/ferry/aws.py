"""boto3 clients, created lazily and cached per process (never at import time)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient


@cache
def sqs() -> SQSClient:
    return boto3.client("sqs")


@cache
def stepfunctions() -> SFNClient:
    return boto3.client("stepfunctions")


def reset_clients() -> None:
    """Forget cached clients (the local stack calls this after it moves the endpoint)."""
    sqs.cache_clear()
    stepfunctions.cache_clear()
