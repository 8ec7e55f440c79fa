"""Reading deploy executions back from Step Functions (for summaries and `ferry` output)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ferry import aws
from ferry.errors import NotFound, TransientError
from ferry.settings import get_settings


@dataclass
class ExecutionView:
    name: str
    status: str
    path: list[str] = field(default_factory=list)  # states entered, in order
    output: dict[str, Any] | None = None


def deploy_execution_arn(request_id: str) -> str:
    machine = get_settings().deploy_state_machine_arn
    return machine.replace(":stateMachine:", ":execution:", 1) + f":{request_id}"


def describe_deploy(request_id: str) -> ExecutionView:
    """Status, path and output of the deploy execution named `request_id`."""
    client = aws.stepfunctions()
    arn = deploy_execution_arn(request_id)
    try:
        execution = client.describe_execution(executionArn=arn)
        events: list[Any] = []
        for page in client.get_paginator("get_execution_history").paginate(executionArn=arn):
            events.extend(page["events"])
    except client.exceptions.ExecutionDoesNotExist as exc:
        raise NotFound(f"deploy {request_id} not found") from exc
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not read deploy {request_id}: {exc}") from exc
    path = [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]
    output = json.loads(execution["output"]) if execution.get("output") else None
    return ExecutionView(name=request_id, status=execution["status"], path=path, output=output)
