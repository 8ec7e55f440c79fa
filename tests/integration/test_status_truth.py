"""Status never lies (issue 11): replays, crashes between steps, deletes, renames and unexpected
errors leave every status true. One test per defect, driven with a scripted agent so each step
of the deploy can be held where the defect lived."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

import ferry.deploy.start
import ferry.sync.run
from ferry.aws.executions import describe_deploy
from ferry.errors import TransientError
from ferry.local.stack import LocalStack
from ferry.settings import get_settings
from tests.helpers import (
    commit,
    compose,
    create_agent,
    create_application,
    create_repository,
    deployed_once,
    events,
    get_application,
    github_push_body,
    github_push_headers,
    push_webhook,
    wait_for,
    wait_for_idle_sync,
    wait_for_status,
)


def _job_finished(api: httpx.Client, job_id: str) -> dict[str, Any] | None:
    job = api.get(f"/jobs/{job_id}").json()
    return job if job.get("status") in ("succeeded", "failed", "superseded") else None


def _wait_for_job(api: httpx.Client, job_id: str) -> dict[str, Any]:
    return wait_for(lambda: _job_finished(api, job_id), what=f"job {job_id} to finish")


# --- 1. premature synced -----------------------------------------------------------------------


def test_sync_commit_recorded_only_by_the_deploy_result_target_meanwhile(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    v1 = commit(git_repo, "app/compose.yaml", compose(greeting="v1"), "v1")
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique, commit=v1)
    v2 = commit(git_repo, "app/compose.yaml", compose(greeting="v2"), "v2")

    accepted = push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    assert accepted.status_code == 202, accepted.text
    # The deploy of v2 now waits at the agent: nothing ran it yet.
    waiting = scripted.take()
    assert waiting.request.commit == v2
    during = get_application(api, application["id"])
    assert (during["sync_status"], during["commit"], during["target_commit"]) == (
        "syncing",
        v1,
        v2,
    )
    assert during["target_commit_message"] == "v2"

    scripted.succeed(waiting)
    done = wait_for_status(api, application["id"], "synced", commit=v2)
    assert (done["commit_message"], done["target_commit"]) == ("v2", v2)


# --- 2. replayed deliveries never move a host back ------------------------------------------


def test_webhook_replayed_github_push_for_older_commit_deploys_nothing(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    v1 = commit(git_repo, "app/compose.yaml", compose(greeting="v1"), "v1")
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique, commit=v1)
    v2 = commit(git_repo, "app/compose.yaml", compose(greeting="v2"), "v2")
    url = f"{stack.api_url}/api/v1/webhooks/repositories/{repository['id']}"
    secret = repository["webhook_secret"]
    body = github_push_body(v2)
    assert httpx.post(url, content=body, headers=github_push_headers(secret, body)).status_code == (
        202
    )
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced", commit=v2)
    wait_for_idle_sync(repository["id"])

    old = github_push_body(v1)  # captured earlier, resent with a fresh delivery id
    replay = httpx.post(url, content=old, headers=github_push_headers(secret, old))
    assert replay.status_code == 202, replay.text
    _wait_for_job(api, replay.json()["job_id"])

    after = get_application(api, application["id"])
    assert (after["sync_status"], after["commit"]) == ("synced", v2)
    assert not [e for e in events(api, application["id"]) if e["commit"] == v1 and e["seq"] > 2]


def test_webhook_generic_naming_older_commit_recorded_ignored(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    v1 = commit(git_repo, "app/compose.yaml", compose(greeting="v1"), "v1")
    v2 = commit(git_repo, "app/compose.yaml", compose(greeting="v2"), "v2")
    repository = create_repository(api, git_repo)
    application, _scripted = deployed_once(api, repository["id"], unique, commit=v2)

    named = push_webhook(
        stack.api_url,
        repository["id"],
        repository["webhook_secret"],
        {"branch": "main", "commit": v1},
    )
    assert named.status_code == 202, named.text
    _wait_for_job(api, named.json()["job_id"])

    after = get_application(api, application["id"])
    assert (after["sync_status"], after["commit"]) == ("synced", v2)
    [ignored] = [e for e in events(api, application["id"]) if e["status"] == "ignored"]
    assert ignored["commit"] == v1
    assert "older than the deployed commit" in (ignored["message"] or "")


# --- 3. rollback, pin and unpin ------------------------------------------------------------


def test_rollback_deploys_last_good_commit_pins_records_pushes_unpin_follows_branch(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    v1 = commit(git_repo, "app/compose.yaml", compose(greeting="v1"), "v1")
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique, commit=v1)
    v2 = commit(git_repo, "app/compose.yaml", compose(greeting="v2"), "v2")
    push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced", commit=v2)
    wait_for_idle_sync(repository["id"])

    rollback = api.post(
        f"/applications/{application['id']}/rollback", json={"reason": "v2 breaks checkout"}
    )
    assert rollback.status_code == 202, rollback.text
    back = scripted.take()
    assert back.request.commit == v1
    scripted.succeed(back)
    pinned = wait_for_status(api, application["id"], "synced", commit=v1)
    assert pinned["pinned_commit"] == v1
    pin = next(e for e in events(api, application["id"]) if e["type"] == "pin")
    assert pin["actor"] and "v2 breaks checkout" in (pin["message"] or "")
    wait_for_idle_sync(repository["id"])

    v3 = commit(git_repo, "app/compose.yaml", compose(greeting="v3"), "v3")
    pushed = push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    _wait_for_job(api, pushed.json()["job_id"])
    held = get_application(api, application["id"])
    assert (held["commit"], held["sync_status"]) == (v1, "synced")
    assert any(
        e["status"] == "ignored" and e["commit"] == v3 for e in events(api, application["id"])
    )

    unpin = api.post(f"/applications/{application['id']}/unpin")
    assert unpin.status_code == 202, unpin.text
    forward = scripted.take()
    assert forward.request.commit == v3
    scripted.succeed(forward)
    followed = wait_for_status(api, application["id"], "synced", commit=v3)
    assert followed["pinned_commit"] is None


def test_rollback_without_earlier_good_commit_conflict(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    application, _scripted = deployed_once(api, repository["id"], unique)
    refused = api.post(f"/applications/{application['id']}/rollback", json={})
    assert refused.status_code == 409, refused.text
    assert get_application(api, application["id"])["pinned_commit"] is None


# --- 5. a delete wins over queued deploys ---------------------------------------------------


def test_delete_with_queued_redeploys_nothing_deploys_after_teardown(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    application, scripted = deployed_once(api, repository["id"], unique)
    first = api.post(f"/applications/{application['id']}/deploy").json()["request_id"]
    in_flight = scripted.take()  # the first redeploy holds the deploy slot, at the agent
    second = api.post(f"/applications/{application['id']}/deploy").json()["request_id"]

    answers: list[int] = []
    deleting = threading.Thread(
        target=lambda: answers.append(api.delete(f"/applications/{application['id']}").status_code)
    )
    deleting.start()
    wait_for(
        lambda: get_application(api, application["id"])["removing"], what="the delete accepted"
    )
    # The agent finishes what it held; the control plane no longer wants it.
    scripted.succeed(in_flight)
    removal = scripted.take_removal()
    scripted.answer(
        removal,
        {
            "request_id": removal.request.request_id,
            "application_id": application["id"],
            "success": True,
        },
    )
    deleting.join(timeout=60)
    assert answers in ([204], [202])
    wait_for(
        lambda: api.get(f"/applications/{application['id']}").status_code == 404,
        what="the record to go",
    )
    for request_id in (first, second):
        wait_for(
            lambda r=request_id: describe_deploy(r).status != "RUNNING",  # type: ignore[misc]
            what=f"{request_id} to end",
        )
    assert "DispatchToAgent" not in describe_deploy(second).path
    with pytest.raises(AssertionError):
        scripted.take(timeout=2)  # nothing else ever reached the agent


# --- 6. a rename keeps the compose project ---------------------------------------------------


def test_rename_keeps_compose_project_and_its_guard(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    application, scripted = deployed_once(api, repository["id"], unique)
    project = application["project_name"]

    renamed = api.patch(f"/applications/{application['id']}", json={"name": f"shop-{unique}"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["project_name"] == project
    api.post(f"/applications/{application['id']}/deploy")
    assert scripted.take().request.project_name == project

    # The old name is free again, but its compose project is still this application's.
    clash = api.post(
        "/applications",
        json={
            "name": application["name"],
            "repository_id": repository["id"],
            "agent_id": application["agent_id"],
            "branch": "main",
            "path": "app/compose.yaml",
        },
    )
    assert clash.status_code == 409, clash.text
    assert "compose project" in clash.json()["detail"]


# --- 7. the window between recording a deploy and starting it --------------------------------


def test_sweeper_restarts_deploy_whose_execution_never_started(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    application, scripted = deployed_once(api, repository["id"], unique)

    def refused(*_args: Any, **_kwargs: Any) -> bool:
        raise TransientError("Step Functions unavailable")

    monkeypatch.setattr(ferry.deploy.start, "start_execution", refused)
    assert api.post(f"/applications/{application['id']}/deploy").status_code == 503
    monkeypatch.undo()
    stuck = get_application(api, application["id"])
    assert stuck["sync_status"] == "syncing"

    monkeypatch.setattr(get_settings(), "deploy_start_grace_seconds", 0)
    assert stack.cloud.scheduler is not None
    stack.cloud.scheduler.fire_all()  # the poller's tick sweeps
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced")


def test_sweeper_ends_repository_syncing_after_its_job_finished(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ferry.domain.models import RepositorySyncStatus
    from ferry.sync.status import update_repository_status

    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    deployed_once(api, repository["id"], unique)
    job_id = api.post(f"/repositories/{repository['id']}/sync").json()["job_id"]
    _wait_for_job(api, job_id)
    # As if the sync's last write had been lost: the job ended, the repository still says so.
    update_repository_status(repository["id"], RepositorySyncStatus.SYNCING, job_id=job_id)

    monkeypatch.setattr(get_settings(), "deploy_start_grace_seconds", 0)
    assert stack.cloud.scheduler is not None
    stack.cloud.scheduler.fire_all()
    ended = wait_for(
        lambda: (
            (r := api.get(f"/repositories/{repository['id']}").json())["sync_status"] != "syncing"
            and r
        ),
        what="the repository's sync to end",
    )
    assert ended["sync_status"] == "success"


# --- 8. unexpected errors end a sync ---------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:169.254.169.254]/x",
        "http://0251.0376.0251.0376/x",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_repository_url_to_forbidden_address_refused_at_create(api: httpx.Client, url: str) -> None:
    refused = api.post("/repositories", json={"url": url, "sync_type": "manual"})
    assert refused.status_code == 400, refused.text
    assert not [r for r in api.get("/repositories").json() if r["url"] == url]


def test_sync_unexpected_error_ends_failed_with_message_and_syncs_again(
    api: httpx.Client, git_repo: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    deployed_once(api, repository["id"], unique)

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise ValueError("something nobody expected")

    monkeypatch.setattr(ferry.sync.run, "open_repository", broken)
    job_id = api.post(f"/repositories/{repository['id']}/sync").json()["job_id"]
    job = _wait_for_job(api, job_id)
    assert job["status"] == "failed"
    failed = api.get(f"/repositories/{repository['id']}").json()
    assert failed["sync_status"] == "failed"
    assert "something nobody expected" in failed["last_sync_error"]
    monkeypatch.undo()
    assert api.post(f"/repositories/{repository['id']}/sync").status_code == 202


# --- the agent asks whether a request is still wanted -----------------------------------------


def test_agent_request_state_same_answer_for_unknown_and_foreign_applications(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    application, _scripted = deployed_once(api, repository["id"], unique)
    stranger = create_agent(api, f"stranger-{unique}")
    base = f"{stack.api_url}/api/v1/agent/requests/req-1"
    headers = {"Authorization": f"Bearer {stranger['token']}"}
    foreign = httpx.get(base, params={"application_id": application["id"]}, headers=headers)
    unknown = httpx.get(base, params={"application_id": "app_missing"}, headers=headers)
    assert (foreign.status_code, foreign.json()) == (unknown.status_code, unknown.json())
    assert json.dumps(foreign.json()).find(application["id"]) == -1


def test_create_application_second_on_same_agent_keeps_first_project(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    agent = create_agent(api, f"host-{unique}")
    first = create_application(
        api, name=f"Shop {unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    assert first["project_name"] == f"shop-{unique}"
