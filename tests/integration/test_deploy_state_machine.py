"""The deploy state machine, executed by moto's ASL interpreter, down every path of DESIGN.md's
table. A scripted agent answers the task token; the real agent is covered in tests/e2e."""

from __future__ import annotations

from pathlib import Path

import boto3
import httpx

from ferry.aws.executions import ExecutionView, describe_deploy
from ferry.local.stack import LocalStack
from ferry.store.applications import get_application as stored_application
from tests.conftest import TEST_HEARTBEAT_SECONDS
from tests.helpers import (
    ScriptedAgent,
    commit,
    compose,
    create_repository,
    finished_deployments,
    get_application,
    push_webhook,
    registered_application,
    wait_for,
    wait_for_status,
)

# A sync marks the application, builds the agent's request and takes the free deploy slot
# itself: its deploys skip MarkInProgress and AcquireDeploySlot.
FULL_PATH = [
    "Marked",
    "DispatchToAgent",
    "ApplyDeployResult",
    "Notify",
    "Done",
]


def _deploying(api: httpx.Client, git_repo: Path, unique: str) -> tuple[dict, ScriptedAgent, str]:
    head = commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    application, agent = registered_application(api, repository["id"], unique)
    return application, agent, head


def _execution(request_id: str) -> ExecutionView:
    def ended() -> ExecutionView | None:
        view = describe_deploy(request_id)
        return view if view.status != "RUNNING" else None

    return wait_for(ended, what=f"execution {request_id} to end")


def test_deploy_success_ends_synced_with_agent_health(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    application, agent, head = _deploying(api, git_repo, unique)
    message = agent.take()
    assert message.request.compose_file == compose()
    assert message.request.project_name == f"app-{unique}"
    assert message.request.commit == head
    syncing = get_application(api, application["id"])
    assert syncing["sync_status"] == "syncing"

    agent.succeed(message, health="healthy")
    done = wait_for_status(api, application["id"], "synced")

    assert (done["health_status"], done["commit"], done["last_sync_error"]) == (
        "healthy",
        head,
        None,
    )
    assert done["last_synced_at"] is not None
    view = _execution(message.request.request_id)
    assert view.status == "SUCCEEDED"
    assert view.path == FULL_PATH
    deployment = finished_deployments(api, application["id"])
    assert [(e["status"], e["request_id"]) for e in deployment] == [
        ("succeeded", message.request.request_id)
    ]


def test_deploy_agent_failure_ends_out_of_sync_unhealthy_with_message(
    api: httpx.Client, git_repo: Path, unique: str, stack: LocalStack
) -> None:
    application, agent, _head = _deploying(api, git_repo, unique)
    message = agent.take()
    agent.fail(message, "image ghost:latest not found")

    done = wait_for_status(api, application["id"], "out_of_sync")
    assert done["health_status"] == "unhealthy"
    assert done["last_sync_error"] == "image ghost:latest not found"
    deployment = finished_deployments(api, application["id"])
    assert deployment[0]["status"] == "failed"
    assert deployment[0]["error"] == "image ghost:latest not found"


def test_deploy_malformed_result_ends_out_of_sync_with_no_result(
    api: httpx.Client, git_repo: Path, unique: str, stack: LocalStack
) -> None:
    application, agent, _head = _deploying(api, git_repo, unique)
    message = agent.take()
    agent.answer(message, {"hello": "world"})

    done = wait_for_status(api, application["id"], "out_of_sync")
    assert done["last_sync_error"] == "agent returned no result"
    assert done["health_status"] == "unknown"  # unchanged


def test_deploy_result_for_another_request_counts_as_no_result(
    api: httpx.Client, git_repo: Path, unique: str, stack: LocalStack
) -> None:
    application, agent, _head = _deploying(api, git_repo, unique)
    message = agent.take()
    agent.answer(
        message,
        {"request_id": "someone-else", "application_id": application["id"], "success": True},
    )
    done = wait_for_status(api, application["id"], "out_of_sync")
    assert done["last_sync_error"] == "agent returned no result"


def test_deploy_without_agent_answer_ends_out_of_sync_after_heartbeat_timeout(
    api: httpx.Client, git_repo: Path, unique: str, stack: LocalStack
) -> None:
    application, agent, _head = _deploying(api, git_repo, unique)
    message = agent.take()  # taken, then the "agent" goes silent

    done = wait_for_status(
        api, application["id"], "out_of_sync", timeout=TEST_HEARTBEAT_SECONDS + 30
    )
    assert "agent stopped responding" in done["last_sync_error"]
    assert done["health_status"] == "unknown"
    view = _execution(message.request.request_id)
    assert view.path == FULL_PATH


def test_deploy_task_failure_ends_out_of_sync_with_transport_error(
    api: httpx.Client, git_repo: Path, unique: str, stack: LocalStack
) -> None:
    application, agent, _head = _deploying(api, git_repo, unique)
    message = agent.take()
    boto3.client("stepfunctions").send_task_failure(
        taskToken=message.task_token, error="MalformedRequest", cause="bad body"
    )
    done = wait_for_status(api, application["id"], "out_of_sync")
    # AWS passes the cause through; moto 5.2.5 drops it, so only the error name is certain here.
    assert done["last_sync_error"].startswith("deploy finished without a result: MalformedRequest")


def test_deploy_heartbeats_keep_a_long_deploy_alive(
    api: httpx.Client, git_repo: Path, unique: str, stack: LocalStack
) -> None:
    import time

    application, agent, _head = _deploying(api, git_repo, unique)
    message = agent.take()
    sfn = boto3.client("stepfunctions")
    deadline = time.monotonic() + TEST_HEARTBEAT_SECONDS * 1.5
    while time.monotonic() < deadline:  # longer than HeartbeatSeconds, beating as an agent does
        sfn.send_task_heartbeat(taskToken=message.task_token)
        time.sleep(1)
    assert get_application(api, application["id"])["sync_status"] == "syncing"
    agent.succeed(message)
    assert wait_for_status(api, application["id"], "synced")["health_status"] == "healthy"


def test_deploy_marked_by_sync_waits_for_slot_an_older_deploy_holds(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    application, agent = registered_application(api, repository["id"], unique)
    older = agent.take()  # at the agent: it holds the application's deploy slot
    newer_commit = commit(git_repo, "app/compose.yaml", compose(greeting="newer"), "newer")
    accepted = push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    assert accepted.status_code == 202, accepted.text

    # The sync marked the newer request but could not take the held slot: its execution
    # skips MarkInProgress and waits at AcquireDeploySlot until the older deploy ends.
    newer_id = wait_for(
        lambda: (
            get_application(api, application["id"])["target_commit"] == newer_commit
            and stored_application(application["id"]).current_request_id
        ),
        what="the newer deploy request",
    )

    def waiting_for_slot() -> ExecutionView | None:
        view = describe_deploy(str(newer_id))
        return view if "WaitForSlot" in view.path else None

    waiting = wait_for(waiting_for_slot, what="the newer deploy to wait for the slot")
    assert waiting.path[:4] == ["Marked", "AcquireDeploySlot", "SlotFree", "WaitForSlot"]

    agent.succeed(older)  # superseded: recorded as nothing, and the slot is given up
    newer = agent.take()
    assert (newer.request.request_id, newer.request.commit) == (newer_id, newer_commit)
    agent.succeed(newer)
    done = wait_for_status(api, application["id"], "synced", commit=newer_commit)
    assert done["last_sync_error"] is None
    assert _execution(newer_id).status == "SUCCEEDED"
