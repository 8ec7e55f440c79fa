"""The deploy state machine's newer rules: one deploy per application at a time, newer commits
supersede older ones, cancellation, and notifications of every outcome."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from ferry.aws.executions import describe_deploy
from ferry.deploy.slot import acquire_slot
from ferry.local.stack import LocalStack
from ferry.settings import get_settings
from ferry.store.applications import get_application as stored_application
from ferry.store.applications import release_deploy_slot, update_application
from tests.conftest import TEST_HEARTBEAT_SECONDS
from tests.helpers import (
    AwsCalls,
    JsonReceiver,
    ScriptedAgent,
    agent_queue_url,
    commit,
    commit_removal,
    compose,
    create_agent,
    create_repository,
    events,
    finished_deployments,
    push_webhook,
    wait_for,
    wait_for_idle_sync,
    wait_for_status,
)


@pytest.fixture
def deployed(
    api: httpx.Client, git_repo: Path, unique: str, receiver: JsonReceiver
) -> tuple[dict, dict, ScriptedAgent]:
    """A deployed application (scripted agent) whose notifications go to `receiver`."""
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    agent = create_agent(api, f"host-{unique}")
    target = api.post("/notifications", json={"name": f"n-{unique}", "url": receiver.url}).json()
    application = api.post(
        "/applications",
        json={
            "name": f"app-{unique}",
            "repository_id": repository["id"],
            "agent_id": agent["id"],
            "path": "app/compose.yaml",
            "notification_ids": [target["id"]],
        },
    ).json()
    scripted = ScriptedAgent(agent_queue_url(agent["id"]))
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced")
    wait_for_idle_sync(repository["id"])
    return repository, application, scripted


def test_newer_commit_waits_for_the_slot_and_supersedes_the_older(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    deployed: tuple[dict, dict, ScriptedAgent],
    receiver: JsonReceiver,
) -> None:
    repository, application, scripted = deployed
    older = commit(git_repo, "app/compose.yaml", compose(greeting="older"))
    push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    running = scripted.take()  # the older deploy holds the slot, at the agent
    assert running.request.commit == older
    newer = commit(git_repo, "app/compose.yaml", compose(greeting="newer"))
    push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    wait_for(
        lambda: get_status(api, application["id"])["target_commit"] == newer, what="newer recorded"
    )

    with pytest.raises(AssertionError):
        scripted.take(timeout=3)  # the newer one waits: one deploy per application at a time
    scripted.succeed(running)  # the older answers late: superseded, its result is not applied
    latest = scripted.take()
    assert latest.request.commit == newer
    scripted.succeed(latest)

    done = wait_for_status(api, application["id"], "synced", commit=newer)
    assert done["last_sync_error"] is None
    by_request = {e["request_id"]: e for e in finished_deployments(api, application["id"])}
    assert by_request[running.request.request_id]["error"] == "superseded by a newer deploy"
    assert by_request[latest.request.request_id]["status"] == "succeeded"
    # The superseded deploy tells nobody: one note for the first deploy, one for the newest.
    wait_for(
        lambda: [t for t in receiver.titles() if "deployed" in t] and len(receiver.titles()) >= 2,
        what="the newest deploy's note",
    )
    assert not [t for t in receiver.titles() if "failed" in t or "without a result" in t]


def deployed_agent_token(api: httpx.Client, agent_id: str) -> str:
    return str(api.post(f"/agents/{agent_id}/token").json()["token"])


def get_status(api: httpx.Client, application_id: str) -> dict[str, str]:
    return dict(api.get(f"/applications/{application_id}").json())


def test_cancel_stops_the_deploy_and_frees_the_slot(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    deployed: tuple[dict, dict, ScriptedAgent],
    receiver: JsonReceiver,
) -> None:
    repository, application, scripted = deployed
    commit(git_repo, "app/compose.yaml", compose(greeting="to-cancel"))
    push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    running = scripted.take()

    response = api.post(f"/applications/{application['id']}/cancel")

    assert response.status_code == 200, response.text
    cancelled = get_status(api, application["id"])
    assert (cancelled["sync_status"], cancelled["last_sync_error"]) == ("out_of_sync", "cancelled")
    note = wait_for(
        lambda: next((b for b in receiver.received if "without a result" in b["title"]), None),
        what="the cancelled deploy's note",
    )
    assert "cancelled" in note["message"]
    # What the agent asks at its next heartbeat: no longer current, so it stops.
    agent_token = deployed_agent_token(api, application["agent_id"])
    state = httpx.get(
        f"{stack.api_url}/api/v1/agent/requests/{running.request.request_id}",
        params={"application_id": application["id"]},
        headers={"Authorization": f"Bearer {agent_token}"},
    ).json()
    assert state["current"] is False
    assert api.post(f"/applications/{application['id']}/cancel").status_code == 409
    # AWS also answers the task's heartbeat with TaskTimedOut; moto 5.2.5 keeps a stopped
    # execution waiting, so here it ends by heartbeat timeout, superseded, changing nothing.
    wait_for(
        lambda: describe_deploy(running.request.request_id).status != "RUNNING",
        timeout=TEST_HEARTBEAT_SECONDS + 30,
        what="the old execution to end",
    )
    assert get_status(api, application["id"])["last_sync_error"] == "cancelled"

    redeploy = api.post(f"/applications/{application['id']}/deploy")  # the slot is free again
    assert redeploy.status_code == 202
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced")


def test_every_outcome_notifies_the_targets_but_superseded_ones(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    receiver: JsonReceiver,
    deployed: tuple[dict, dict, ScriptedAgent],
) -> None:
    repository, application, scripted = deployed
    wait_for(
        lambda: any("deployed" in t for t in receiver.titles()), what="the first deploy's note"
    )

    commit(git_repo, "app/compose.yaml", compose(greeting="will-fail"))
    push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    scripted.fail(scripted.take(), "image pull failed")
    wait_for(
        lambda: any("failed to deploy" in t for t in receiver.titles()), what="the failure note"
    )
    assert any("image pull failed" in str(body.get("message")) for body in receiver.received)

    commit(git_repo, "app/compose.yaml", compose(greeting="silent-agent"))
    push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    scripted.take()  # and never answers
    wait_for(
        lambda: any("without a result" in t for t in receiver.titles()),
        timeout=TEST_HEARTBEAT_SECONDS + 30,
        what="the no-result note",
    )
    target = api.get(f"/notifications/{application['notification_ids'][0]}").json()
    assert target["last_status"] == "ok"


def test_failing_target_never_fails_the_deploy(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    deployed: tuple[dict, dict, ScriptedAgent],
    receiver: JsonReceiver,
) -> None:
    repository, application, scripted = deployed
    receiver.close()  # the target stops answering
    head = commit(git_repo, "app/compose.yaml", compose(greeting="unheard"))
    push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    scripted.succeed(scripted.take())

    wait_for_status(api, application["id"], "synced", commit=head)
    target_id = application["notification_ids"][0]
    failed = wait_for(
        lambda: (
            (t := api.get(f"/notifications/{target_id}").json())["last_status"] == "failed" and t
        ),
        what="the failed send to be recorded",
    )
    assert failed["last_error"]


def test_sync_failure_notifies_the_targets(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    receiver: JsonReceiver,
    deployed: tuple[dict, dict, ScriptedAgent],
) -> None:
    repository, application, _scripted = deployed
    commit(git_repo, "moving/compose.yaml", compose())  # the same file: nothing to deploy
    moved = api.patch(f"/applications/{application['id']}", json={"path": "moving/compose.yaml"})
    assert moved.status_code == 200, moved.text
    wait_for_idle_sync(repository["id"])
    commit_removal(git_repo, "moving/compose.yaml")  # gone after the application moved there
    assert api.post(f"/repositories/{repository['id']}/sync").status_code == 202
    wait_for(
        lambda: any("could not be synced" in t for t in receiver.titles()),
        what="the sync failure note",
    )
    assert [e for e in events(api, application["id"]) if e["status"] == "failed"]
    assert repository["id"]


def test_acquire_slot_free_costs_one_write_and_tells_busy_from_superseded(
    api: httpx.Client, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    _repository, application, _scripted = deployed
    current = api.get(f"/applications/{application['id']}").json()
    stored = stored_application(application["id"])
    ask = {"application_id": stored.id, "timeout_seconds": 60}
    assert stored.current_request_id is not None
    request = {**ask, "request_id": stored.current_request_id}
    settings = get_settings()

    this_thread = threading.current_thread().name
    with AwsCalls(lambda thread: thread == this_thread) as aws:
        assert acquire_slot(request) == {"acquired": True, "superseded": False}
    # The slot was free: the conditional write alone decides, nothing is read.
    assert [(op, table) for _service, op, table in aws.calls] == [
        ("UpdateItem", settings.applications_table)
    ]
    assert acquire_slot({**ask, "request_id": "someone-else"}) == {
        "acquired": False,
        "superseded": True,  # not the application's current request
    }
    # The current request holds the slot: another current one would wait, not be superseded.
    update_application(stored.id, {"current_request_id": "newer"})
    assert acquire_slot({**ask, "request_id": "newer"}) == {
        "acquired": False,
        "superseded": False,
    }
    release_deploy_slot(stored.id, stored.current_request_id)
    update_application(stored.id, {"current_request_id": stored.current_request_id})
    assert current["sync_status"] == "synced"
