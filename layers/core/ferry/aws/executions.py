"""Step Functions executions of the deploy and undeploy state machines: start, stop, read back.

An execution is named after its deploy request, so starting the same request twice is harmless
(the duplicate name is refused and reported as `False`).
"""

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
    """An execution as the console shows it: status, the states entered in order, output."""

    name: str
    status: str
    path: list[str] = field(default_factory=list)
    output: dict[str, Any] | None = None


def _execution_arn(machine_arn: str, name: str) -> str:
    return machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def sync_execution_arn(job_id: str) -> str:
    return _execution_arn(get_settings().sync_state_machine_arn, job_id)


def deploy_execution_arn(request_id: str) -> str:
    return _execution_arn(get_settings().deploy_state_machine_arn, request_id)


def undeploy_execution_arn(request_id: str) -> str:
    return _execution_arn(get_settings().undeploy_state_machine_arn, request_id)


def start_execution(machine_arn: str, name: str, execution_input: str) -> bool:
    """Start an execution; False when one of that name exists already (a duplicate start)."""
    client = aws.stepfunctions()
    try:
        client.start_execution(stateMachineArn=machine_arn, name=name, input=execution_input)
    except client.exceptions.ExecutionAlreadyExists:
        return False
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not start execution {name}: {exc}") from exc
    return True


def stop_execution(execution_arn: str, *, error: str, cause: str) -> bool:
    """Stop an execution; False when there is no such execution."""
    client = aws.stepfunctions()
    try:
        client.stop_execution(executionArn=execution_arn, error=error, cause=cause)
    except client.exceptions.ExecutionDoesNotExist:
        return False
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not stop the execution: {exc}") from exc
    return True


def execution_status(execution_arn: str) -> tuple[str, dict[str, Any]]:
    """The execution's status and its output (empty while it runs). NotFound when unknown."""
    client = aws.stepfunctions()
    try:
        execution = client.describe_execution(executionArn=execution_arn)
    except client.exceptions.ExecutionDoesNotExist as exc:
        raise NotFound(f"execution {execution_arn.rsplit(':', 1)[-1]} not found") from exc
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not read execution {execution_arn}: {exc}") from exc
    output = json.loads(execution["output"]) if execution.get("output") else {}
    return execution["status"], output


def describe_deploy(request_id: str) -> ExecutionView:
    """Status, path and output of the deploy execution named `request_id`."""
    return describe_execution(deploy_execution_arn(request_id), f"deploy {request_id}")


def describe_sync(job_id: str) -> ExecutionView:
    """Status, path and output of the repository-sync execution of sync job `job_id`."""
    return describe_execution(sync_execution_arn(job_id), f"sync {job_id}")


def describe_execution(arn: str, what: str) -> ExecutionView:
    """Status, the states entered in order (as the console shows them) and output."""
    client = aws.stepfunctions()
    name = arn.rsplit(":", 1)[-1]
    try:
        execution = client.describe_execution(executionArn=arn)
        events: list[Any] = []
        for page in client.get_paginator("get_execution_history").paginate(executionArn=arn):
            events.extend(page["events"])
    except client.exceptions.ExecutionDoesNotExist as exc:
        raise NotFound(f"{what} not found") from exc
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not read {what}: {exc}") from exc
    path = [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]
    output = json.loads(execution["output"]) if execution.get("output") else None
    return ExecutionView(name=name, status=execution["status"], path=path, output=output)
