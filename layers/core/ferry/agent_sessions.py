"""Agent sessions: an agent trades its token for short-lived AWS credentials that reach only its
own queue and the Step Functions task answers (STS AssumeRole with a session policy)."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ferry.domain.models import Agent
from ferry.errors import TransientError
from ferry.settings import get_settings


def agent_policy(queue_arn: str) -> dict[str, Any]:
    """The session policy: the intersection with the role's own policy is what the agent gets."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnQueue",
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                "Resource": queue_arn,
            },
            {
                "Sid": "AnswerTasks",
                "Effect": "Allow",
                "Action": [
                    "states:SendTaskSuccess",
                    "states:SendTaskFailure",
                    "states:SendTaskHeartbeat",
                ],
                "Resource": "*",
            },
        ],
    }


def queue_arn_of(queue_url: str, region: str, account: str) -> str:
    return f"arn:aws:sqs:{region}:{account}:{queue_url.rstrip('/').rsplit('/', 1)[-1]}"


def agent_credentials(agent: Agent, region: str) -> dict[str, Any] | None:
    """Credentials for the agent, or None when no agent role is configured."""
    settings = get_settings()
    if not settings.agent_role_arn:
        return None
    account = settings.agent_role_arn.split(":")[4]
    try:
        response = boto3.client("sts").assume_role(
            RoleArn=settings.agent_role_arn,
            RoleSessionName=f"ferry-{agent.id}"[:64],
            DurationSeconds=settings.agent_session_seconds,
            Policy=json.dumps(agent_policy(queue_arn_of(agent.queue_url, region, account))),
        )
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not issue agent credentials: {exc}") from exc
    credentials = response["Credentials"]
    return {
        "access_key_id": credentials["AccessKeyId"],
        "secret_access_key": credentials["SecretAccessKey"],
        "session_token": credentials["SessionToken"],
        "expiration": credentials["Expiration"],
    }
