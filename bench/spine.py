"""Webhook → deploy job on the agent's queue (issue 17, first row).

Ferry: a commit changes the application's compose file, the webhook is posted, and the clock
stops when the deploy request for that commit is received from the agent's queue (the sync
worker, the repository-sync execution and the deploy execution up to DispatchToAgent all lie
on that path). Each round then answers the deploy and waits for both executions to end, so the
next round's counts hold only its own path.

Floor, on the same moto in the same run: a bare SQS send → receive round trip plus a one-task
state machine (a Lambda task, then sqs:sendMessage) from StartExecution until its message is
received.

Counted per round, in the window between the POST and the receipt: DynamoDB calls (each a
round trip to the store; the path is serial but for EndSync, which may run beside the deploy's
first states), Lambda invocations, and the states both executions entered.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from functools import partial
from typing import Any

import boto3

from bench.harness import CallCounter, Stack, count_transitions, running_stack, wait_for
from bench.report import Row, median_ms

ROUNDS = int(os.environ.get("FERRY_BENCH_ROUNDS", "10"))
COMPOSE = "services:\n  web:\n    image: busybox:1.36\n    command: [sleep, '{n}']\n"
STORE_CALL_GOAL = 8
RATIO_GOAL = 2.0


def floor_task(event: Any, _context: Any) -> Any:
    """The floor's Lambda task: hands its input on (the least a task can do)."""
    return event


def _floor(stack: Stack) -> tuple[list[float], list[float]]:
    from ferry.local.template import FunctionSpec

    sqs, sfn, lam = boto3.client("sqs"), boto3.client("stepfunctions"), boto3.client("lambda")
    queue = sqs.create_queue(QueueName="ferry-agent-bench-floor")["QueueUrl"]
    deploy_machine = sfn.describe_state_machine(
        stateMachineArn=stack.cloud.deploy_state_machine_arn
    )
    # Built, not asked: moto's IAM checks refuse Lambda's GET requests (see cloud.py).
    function_role = stack.cloud.role_arn("MarkInProgressFunctionRole")
    function = lam.create_function(
        FunctionName="ferry-bench-floor",
        Runtime="python3.11",
        Role=function_role,
        Handler="bench.spine.floor_task",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    stack.cloud.lambdas.register(
        "ferry-bench-floor",
        FunctionSpec(logical_id="BenchFloor", module="bench.spine", attribute="floor_task"),
    )
    definition = {
        "StartAt": "Task",
        "States": {
            "Task": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function["FunctionArn"], "Payload.$": "$"},
                "ResultSelector": {"round.$": "$.Payload.round"},
                "Next": "Send",
            },
            "Send": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage",
                "Parameters": {"QueueUrl": queue, "MessageBody.$": "States.JsonToString($)"},
                "End": True,
            },
        },
    }
    machine = sfn.create_state_machine(
        name="ferry-bench-floor",
        definition=json.dumps(definition),
        roleArn=deploy_machine["roleArn"],
    )["stateMachineArn"]

    def receive() -> None:
        got = wait_for(
            lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"),
            what="the floor's message",
        )
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=got[0]["ReceiptHandle"])

    round_trip: list[float] = []
    execution: list[float] = []
    for n in range(ROUNDS + 1):  # the first warms the interpreter's clients
        started = time.perf_counter()
        sqs.send_message(QueueUrl=queue, MessageBody="x")
        receive()
        bare = time.perf_counter() - started
        started = time.perf_counter()
        sfn.start_execution(
            stateMachineArn=machine, name=f"floor-{n}", input=json.dumps({"round": n})
        )
        receive()
        if n:
            round_trip.append(bare)
            execution.append(time.perf_counter() - started)
    return round_trip, execution


def measure() -> list[Row]:
    from ferry.aws.executions import deploy_execution_arn, sync_execution_arn
    from ferry.local.sample import commit_file, create_sample_repository

    with running_stack() as stack:
        sqs, sfn = boto3.client("sqs"), boto3.client("stepfunctions")
        repo_path = stack.home / "repo"
        create_sample_repository(repo_path, "busybox:1.36")
        repository = stack.repository(repo_path)
        agent_id, queue = stack.agent("bench")
        stack.application("bench", repository["id"], agent_id, "hello/compose.yaml")

        def take(commit: str | None) -> dict[str, Any]:
            from bench.harness import answer

            while True:
                for message in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get(
                    "Messages", []
                ):
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                    body: dict[str, Any] = json.loads(message["Body"])
                    if commit is None or body["request"]["commit"] == commit:
                        return body
                    answer(sfn, message["Body"])

        def settle(body: dict[str, Any], job_id: str | None) -> None:
            from bench.harness import answer

            answer(sfn, json.dumps(body))
            arns = [deploy_execution_arn(body["request"]["request_id"])]
            if job_id:
                arns.append(sync_execution_arn(job_id))
            for arn in arns:
                wait_for(partial(_ended, sfn, arn), what=f"{arn} to end")

        settle(take(None), None)  # the application's first deploy
        samples: list[float] = []
        store_calls: list[int] = []
        invocations: list[int] = []
        transitions: list[int] = []
        operations: dict[str, int] = {}
        for n in range(ROUNDS):
            commit = commit_file(repo_path, "hello/compose.yaml", COMPOSE.format(n=n), f"round {n}")
            before_calls = stack.calls.snapshot()
            before_invocations = sum(stack.invocations.values())
            started = time.perf_counter()
            job_id = stack.webhook(repository, {"branch": "main"}).json()["job_id"]
            body = take(commit)
            samples.append(time.perf_counter() - started)
            window = stack.calls.snapshot() - before_calls
            store_calls.append(CallCounter.of(window, "dynamodb"))
            invocations.append(sum(stack.invocations.values()) - before_invocations)
            operations = {f"{s}:{op}": c for (s, op), c in sorted(window.items())}
            settle(body, job_id)
            request_id = body["request"]["request_id"]
            transitions.append(
                count_transitions(sync_execution_arn(job_id))
                + _transitions_to_dispatch(deploy_execution_arn(request_id))
            )
        round_trip, execution = _floor(stack)

    ferry = statistics.median(samples)
    floor = statistics.median(round_trip) + statistics.median(execution)
    ratio = round(ferry / floor, 1)
    calls = int(statistics.median(store_calls))
    return [
        Row(
            figure="webhook → deploy job on the agent's queue",
            ferry=f"{median_ms(samples)} ms",
            baseline=(
                f"{round(floor * 1000, 1)} ms (SQS round trip {median_ms(round_trip)} + "
                f"one-task execution {median_ms(execution)})"
            ),
            ratio=ratio,
            goal=f"<= {RATIO_GOAL:g}x",
            met=ratio <= RATIO_GOAL,
            details={"rounds": ROUNDS, "samples_ms": [round(s * 1000, 1) for s in samples]},
        ),
        Row(
            figure="store calls on the webhook → agent path",
            ferry=f"{calls} DynamoDB calls",
            baseline="-",
            ratio=None,
            goal=f"<= {STORE_CALL_GOAL}",
            met=calls <= STORE_CALL_GOAL,
            details={
                "per_round": store_calls,
                "lambda_invocations": int(statistics.median(invocations)),
                "state_transitions": int(statistics.median(transitions)),
                "calls_last_round": operations,
            },
        ),
    ]


def _transitions_to_dispatch(execution_arn: str) -> int:
    """States the deploy execution entered up to and including DispatchToAgent."""
    sfn = boto3.client("stepfunctions")
    entered = 0
    for event in sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]:
        if event["type"].endswith("StateEntered"):
            entered += 1
            if event["stateEnteredEventDetails"]["name"] == "DispatchToAgent":
                break
    return entered


def _ended(sfn: Any, execution_arn: str) -> bool:
    return bool(sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING")
