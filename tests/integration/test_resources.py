"""Repositories, agents, applications and notification targets through their whole lifecycle."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import pytest
from dulwich.refs import Ref
from dulwich.repo import Repo

from ferry.local.stack import LocalStack
from ferry.store.applications import create_application as store_application
from tests.helpers import (
    ScriptedAgent,
    agent_queue_url,
    commit,
    compose,
    create_agent,
    create_repository,
    deployed_once,
    events,
    get_application,
    wait_for,
)


@pytest.fixture
def deployed(api: httpx.Client, git_repo: Path, unique: str) -> tuple[dict, dict, ScriptedAgent]:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    application, scripted = deployed_once(api, repository["id"], unique)
    return repository, application, scripted


def test_repository_patch_changes_settings_and_credentials(
    api: httpx.Client, git_repo: Path
) -> None:
    repository = create_repository(api, git_repo)
    changed = api.patch(
        f"/repositories/{repository['id']}",
        json={
            "sync_type": "polling",
            "polling_interval_seconds": 120,
            "auth": {"kind": "token", "secret": "t0ken"},
        },
    ).json()
    assert (
        changed["sync_type"],
        changed["polling_interval_seconds"],
        changed["has_credentials"],
    ) == (
        "polling",
        120,
        True,
    )
    cleared = api.patch(f"/repositories/{repository['id']}", json={"auth": None}).json()
    assert cleared["has_credentials"] is False
    assert (
        api.patch(
            f"/repositories/{repository['id']}", json={"polling_interval_seconds": 10}
        ).status_code
        == 400
    )
    assert (
        api.patch(
            f"/repositories/{repository['id']}", json={"url": "ftp://x.example/r.git"}
        ).status_code
        == 400
    )
    assert api.get(f"/repositories/{repository['id']}").json()["polling_interval_seconds"] == 120


def test_repository_manual_sync_answers_202_and_records_manual_events(
    api: httpx.Client, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    repository, application, _ = deployed
    response = api.post(f"/repositories/{repository['id']}/sync")
    assert response.status_code == 202
    assert response.json()["job_id"].startswith("job_")
    manual = wait_for(
        lambda: [e for e in events(api, application["id"]) if e["trigger"] == "manual"],
        what="a manual sync event",
    )
    assert manual[0]["status"] == "no_change"
    assert manual[0]["actor"] == "local admin (ferry up)"
    assert api.post("/repositories/repo_missing/sync").status_code == 404


def test_repository_with_applications_cannot_be_deleted(
    api: httpx.Client, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    repository, _application, _ = deployed
    response = api.delete(f"/repositories/{repository['id']}")
    assert response.status_code == 409
    assert api.get(f"/repositories/{repository['id']}").status_code == 200


def test_repository_without_applications_is_deleted(api: httpx.Client, git_repo: Path) -> None:
    repository = create_repository(api, git_repo)
    assert api.delete(f"/repositories/{repository['id']}").status_code == 204
    assert api.get(f"/repositories/{repository['id']}").status_code == 404


def test_agent_delete_refused_with_applications_then_removes_queue(
    api: httpx.Client, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    _repository, application, _ = deployed
    agent_id = application["agent_id"]
    queue = agent_queue_url(agent_id)
    assert api.delete(f"/agents/{agent_id}").status_code == 409

    assert (
        api.delete(f"/applications/{application['id']}", params={"force": True}).status_code == 204
    )
    assert api.delete(f"/agents/{agent_id}").status_code == 204

    assert api.get(f"/agents/{agent_id}").status_code == 404
    with pytest.raises(boto3.client("sqs").exceptions.QueueDoesNotExist):
        boto3.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])


def test_agent_never_heard_from_is_offline_and_heartbeat_brings_it_online(
    stack: LocalStack, api: httpx.Client, unique: str
) -> None:
    agent = create_agent(api, f"host-{unique}")
    assert agent["online"] is False
    beat = httpx.post(
        f"{stack.api_url}/api/v1/agent/heartbeat",
        headers={"Authorization": f"Bearer {agent['token']}"},
    )
    assert beat.status_code == 204
    assert api.get(f"/agents/{agent['id']}").json()["online"] is True
    assert httpx.post(f"{stack.api_url}/api/v1/agent/heartbeat").status_code == 401


def test_application_redeploy_sends_stored_compose_again(
    api: httpx.Client, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    _repository, application, scripted = deployed
    current = get_application(api, application["id"])

    response = api.post(f"/applications/{application['id']}/deploy")

    assert response.status_code == 202
    message = scripted.take()
    assert message.request.request_id == response.json()["request_id"]
    assert (message.request.commit, message.request.compose_file) == (current["commit"], compose())
    scripted.succeed(message)
    wait_for(
        lambda: [
            e
            for e in events(api, application["id"])
            if e["request_id"] == message.request.request_id and e["status"] == "succeeded"
        ],
        what="the redeploy's event",
    )
    # No sync marked it: its own execution marks it in progress.
    path = f"/applications/{application['id']}/deploys/{message.request.request_id}"
    execution = wait_for(
        lambda: (body := api.get(path).json())["status"] != "RUNNING" and body,
        what="the redeploy's execution to end",
    )
    assert execution["path"][:3] == ["Marked", "MarkInProgress", "AcquireDeploySlot"]


def test_application_not_yet_synced_cannot_be_redeployed(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    repository = create_repository(api, git_repo, sync_type="manual")  # empty: nothing to sync
    agent = create_agent(api, f"host-{unique}")
    # Stored directly: the API reads the compose file first, and this repository has none.
    application = store_application(
        name=f"a-{unique}",
        repository_id=repository["id"],
        agent_id=agent["id"],
        branch="main",
        path="app/compose.yaml",
    )
    assert api.post(f"/applications/{application.id}/deploy").status_code == 409


def test_application_patch_branch_queues_sync_and_agent_move_is_refused(
    api: httpx.Client, deployed: tuple[dict, dict, ScriptedAgent], git_repo: Path, unique: str
) -> None:
    _repository, application, _ = deployed
    other = create_agent(api, f"other-{unique}")
    assert (
        api.patch(f"/applications/{application['id']}", json={"agent_id": other["id"]}).status_code
        == 400
    )
    with Repo(str(git_repo)) as repo:
        repo.refs[Ref(b"refs/heads/develop")] = repo.refs[Ref(b"refs/heads/main")]
    changed = api.patch(f"/applications/{application['id']}", json={"branch": "develop"}).json()
    assert changed["branch"] == "develop"
    assert changed["job_id"].startswith("job_")
    assert api.patch(f"/applications/{application['id']}", json={"path": "/abs"}).status_code == 400


STATUS_FIELDS = (
    "sync_status",
    "health_status",
    "commit",
    "commit_message",
    "last_synced_at",
    "last_sync_error",
)


def test_application_patch_ignores_status_fields(
    api: httpx.Client, deployed: tuple[dict, dict, ScriptedAgent], unique: str
) -> None:
    _repository, application, _ = deployed
    before = get_application(api, application["id"])
    assert (before["sync_status"], before["health_status"]) == ("synced", "healthy")
    status_changes = {
        "sync_status": "failed",
        "health_status": "unhealthy",
        "commit": "f" * 40,
        "commit_message": "forged",
        "last_synced_at": "2000-01-01T00:00:00Z",
        "last_sync_error": "forged error",
    }

    only_status = api.patch(f"/applications/{application['id']}", json=status_changes)
    with_rename = api.patch(
        f"/applications/{application['id']}", json={**status_changes, "name": f"renamed-{unique}"}
    )

    assert only_status.status_code == 200, only_status.text
    assert with_rename.status_code == 200, with_rename.text
    assert only_status.json()["job_id"] is None
    assert with_rename.json()["name"] == f"renamed-{unique}"
    stored = get_application(api, application["id"])
    assert stored["name"] == f"renamed-{unique}"
    for answered in (only_status.json(), with_rename.json(), stored):
        assert {k: answered[k] for k in STATUS_FIELDS} == {k: before[k] for k in STATUS_FIELDS}


def test_application_delete_removes_it_after_agent_tears_it_down(
    api: httpx.Client, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    _repository, application, scripted = deployed
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(api.delete, f"/applications/{application['id']}")
        removal = scripted.take_removal()
        assert removal.request.project_name == application["project_name"]
        scripted.answer(
            removal,
            {
                "request_id": removal.request.request_id,
                "application_id": application["id"],
                "success": True,
            },
        )
        response = pending.result(timeout=30)
    assert response.status_code == 204
    assert api.get(f"/applications/{application['id']}").status_code == 404


def test_application_delete_keeps_it_when_the_agent_fails(
    api: httpx.Client, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    _repository, application, scripted = deployed
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(api.delete, f"/applications/{application['id']}")
        removal = scripted.take_removal()
        scripted.fail(removal, "docker compose down failed: permission denied")
        response = pending.result(timeout=30)
    assert response.status_code == 502
    assert "permission denied" in response.json()["detail"]
    kept = get_application(api, application["id"])
    assert "could not remove it" in kept["last_sync_error"]


def test_notification_attach_detach_and_delete(
    api: httpx.Client, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    _repository, application, _ = deployed
    target = api.post(
        "/notifications", json={"name": "ops", "url": "json://127.0.0.1:9/hook"}
    ).json()
    assert (
        api.patch(
            f"/applications/{application['id']}", json={"notification_ids": ["ntf_missing"]}
        ).status_code
        == 400
    )

    attached = api.patch(
        f"/applications/{application['id']}", json={"notification_ids": [target["id"]]}
    )
    assert attached.json()["notification_ids"] == [target["id"]]
    renamed = api.patch(f"/notifications/{target['id']}", json={"name": "ops-2"}).json()
    assert renamed["name"] == "ops-2"

    assert api.delete(f"/notifications/{target['id']}").status_code == 204
    assert get_application(api, application["id"])["notification_ids"] == []
    assert api.get(f"/notifications/{target['id']}").status_code == 404
