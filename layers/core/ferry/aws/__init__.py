"""Adapters for the AWS services beside DynamoDB (which is `ferry.store`'s): SQS (`queues`),
Step Functions (`executions`), STS (`credentials`), Secrets Manager (`secrets`) and S3
(`objects`).

They are the only modules that call AWS for these services, and they translate botocore's errors
into Ferry's own (`ferry.errors`), so nothing above them catches `ClientError`. Clients are created
lazily and cached per process (never at import time).

Clients come from one plain botocore session, as boto3's default session would make them, without
importing boto3: boto3 adds resources and the transfer manager, which Ferry never uses, and its
import is about a tenth of a Lambda's cold start (docs/performance.md). pynamodb and Powertools
speak botocore too.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, cast

import botocore.session

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

DEFAULT_REGION = "us-east-1"


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


def client(service: str) -> Any:
    """A new client of `service` (callers that make one per call; cached clients are below)."""
    return _session().create_client(service)


@cache
def sqs() -> SQSClient:
    return cast("SQSClient", client("sqs"))


@cache
def stepfunctions() -> SFNClient:
    return cast("SFNClient", client("stepfunctions"))


@cache
def s3() -> S3Client:
    return cast("S3Client", client("s3"))


def region() -> str:
    """The region this process talks to, as the environment says it now (the session reads its
    variables at each call; a fresh session per call cost about 5 ms, once per agent session)."""
    return str(_session().get_config_variable("region") or DEFAULT_REGION)


def reset_clients() -> None:
    """Forget cached clients and the session they came from (the local stack calls this after it
    moves the endpoint, and after it changes how credentials resolve)."""
    _session.cache_clear()
    sqs.cache_clear()
    stepfunctions.cache_clear()
    s3.cache_clear()
