"""Agent sessions: an agent trades its token for short-lived AWS credentials that reach only its
own queue and the Step Functions task answers (STS AssumeRole with a session policy)."""

from __future__ import annotations

from typing import Any

from ferry.aws import region
from ferry.aws.credentials import assume_role
from ferry.domain.messages import AgentSession, AwsCredentials
from ferry.domain.models import Agent
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


def queue_arn_of(queue_url: str, role_arn: str, region_name: str) -> str:
    """The queue's ARN, in the role's partition and account (aws, aws-cn, aws-us-gov, ...)."""
    parts = role_arn.split(":")
    partition, account = parts[1], parts[4]
    return f"arn:{partition}:sqs:{region_name}:{account}:{queue_url.rstrip('/').rsplit('/', 1)[-1]}"


def agent_credentials(agent: Agent, region_name: str) -> AwsCredentials | None:
    """Credentials for the agent, or None when no agent role is configured."""
    settings = get_settings()
    if not settings.agent_role_arn:
        return None
    issued = assume_role(
        settings.agent_role_arn,
        f"ferry-{agent.id}",
        settings.agent_session_seconds,
        agent_policy(queue_arn_of(agent.queue_url, settings.agent_role_arn, region_name)),
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
