"""An agent session's policy names its queue in the partition and account of the agent role."""

from __future__ import annotations

import pytest

from ferry.manage.agent_sessions import agent_policy, queue_arn_of


@pytest.mark.parametrize(
    ("partition", "region", "endpoint"),
    [
        ("aws", "eu-west-1", "https://sqs.eu-west-1.amazonaws.com"),
        ("aws-cn", "cn-north-1", "https://sqs.cn-north-1.amazonaws.com.cn"),
        ("aws-us-gov", "us-gov-west-1", "https://sqs.us-gov-west-1.amazonaws.com"),
    ],
)
def test_queue_arn_of_takes_partition_and_account_of_the_role(
    partition: str, region: str, endpoint: str
) -> None:
    role_arn = f"arn:{partition}:iam::210987654321:role/ferry-AgentRole-ABC"
    queue_url = f"{endpoint}/210987654321/ferry-agent-agt_1/"

    arn = queue_arn_of(queue_url, role_arn, region)

    assert arn == f"arn:{partition}:sqs:{region}:210987654321:ferry-agent-agt_1"
    assert agent_policy(arn)["Statement"][0]["Resource"] == arn
