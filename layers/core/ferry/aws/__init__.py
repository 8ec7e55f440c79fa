"""Adapters for the AWS services beside DynamoDB (which is `ferry.store`'s): SQS (`queues`),
Step Functions (`executions`), STS (`credentials`), Secrets Manager (`secrets`) and S3
(`objects`).

They are the only modules that call boto3 for these services, and they translate its errors into
Ferry's own (`ferry.errors`), so nothing above them catches `ClientError`. Clients are created
lazily and cached per process (never at import time).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

DEFAULT_REGION = "us-east-1"


@cache
def sqs() -> SQSClient:
    return boto3.client("sqs")


@cache
def stepfunctions() -> SFNClient:
    return boto3.client("stepfunctions")


@cache
def s3() -> S3Client:
    return boto3.client("s3")


def region() -> str:
    """The region this process talks to."""
    return boto3.session.Session().region_name or DEFAULT_REGION


def reset_clients() -> None:
    """Forget cached clients (the local stack calls this after it moves the endpoint)."""
    sqs.cache_clear()
    stepfunctions.cache_clear()
    s3.cache_clear()
