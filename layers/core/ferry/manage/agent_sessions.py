"""Agent sessions: an agent trades its token for short-lived AWS credentials that reach only its
own queue, the Step Functions task answers and the bundles handed to it through the bundle bucket
(STS AssumeRole with a session policy)."""

from __future__ import annotations

from typing import Any

from ferry.aws import region
from ferry.aws.credentials import assume_role
from ferry.aws.objects import agent_prefix
from ferry.domain.messages import AgentSession, AwsCredentials
from ferry.domain.models import Agent
from ferry.settings import get_settings


def agent_policy(queue_arn: str, bundles_arn: str | None = None) -> dict[str, Any]:
    """The session policy: the intersection with the role's own policy is what the agent gets.
    `bundles_arn` names the objects of the bundle bucket handed to this agent (none: no bucket)."""
    bundles = (
        [
            {
                "Sid": "OwnBundles",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": bundles_arn,
            }
        ]
        if bundles_arn
        else []
    )
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
            *bundles,
        ],
    }


def queue_arn_of(queue_url: str, role_arn: str, region_name: str) -> str:
    """The queue's ARN, in the role's partition and account (aws, aws-cn, aws-us-gov, ...)."""
    parts = role_arn.split(":")
    partition, account = parts[1], parts[4]
    return f"arn:{partition}:sqs:{region_name}:{account}:{queue_url.rstrip('/').rsplit('/', 1)[-1]}"


def bundles_arn_of(agent_id: str, bucket: str, role_arn: str) -> str | None:
    """The ARN of the bundle bucket's objects handed to the agent, in the role's partition
    (None without a bucket)."""
    if not bucket:
        return None
    partition = role_arn.split(":")[1]
    return f"arn:{partition}:s3:::{bucket}/{agent_prefix(agent_id)}*"


def agent_credentials(agent: Agent, region_name: str) -> AwsCredentials | None:
    """Credentials for the agent, or None when no agent role is configured."""
    settings = get_settings()
    if not settings.agent_role_arn:
        return None
    issued = assume_role(
        settings.agent_role_arn,
        f"ferry-{agent.id}",
        settings.agent_session_seconds,
        agent_policy(
            queue_arn_of(agent.queue_url, settings.agent_role_arn, region_name),
            bundles_arn_of(agent.id, settings.bundle_bucket, settings.agent_role_arn),
        ),
    )
    return AwsCredentials(
        access_key_id=issued.access_key_id,
        secret_access_key=issued.secret_access_key,
        session_token=issued.session_token,
        expiration=issued.expiration,
    )


def agent_session(agent: Agent) -> AgentSession:
    """What the agent needs to take its deploy requests: its queue, region and credentials."""
    region_name = region()
    return AgentSession(
        agent_id=agent.id,
        name=agent.name,
        queue_url=agent.queue_url,
        region=region_name,
        aws_endpoint_url=get_settings().aws_endpoint_url or None,
        credentials=agent_credentials(agent, region_name),
    )
