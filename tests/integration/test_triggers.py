"""Every trigger through the HTTP API against the local stack, down to a deploy at the right
commit: provider webhooks (real HMACs), GitHub Actions (real JWTs from a loopback issuer),
polling (the scheduler's poller) and manual sync; duplicates never deploy twice."""

from __future__ import annotations

import hashlib
import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import httpx
import pytest

from ferry.local.stack import LocalStack
from ferry.store.applications import create_application as store_application
from ferry.store.repositories import get_repository
from ferry.sync.polling import next_poll_at, poll_due_repositories
from tests.helpers import (
    ScriptedAgent,
    commit,
    compose,
    create_agent,
    create_repository,
    deployed_once,
    events,
    finished_deployments,
    github_push_body,
    github_push_headers,
    wait_for,
    wait_for_idle_sync,
    wait_for_status,
)
from tests.oidc_issuer import Issuer, actions_token


@pytest.fixture
def deployed(api: httpx.Client, git_repo: Path, unique: str) -> tuple[dict, dict, ScriptedAgent]:
    """A webhook repository whose application is deployed (scripted agent) at the first commit."""
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique)
    return repository, application, scripted


def _webhook_url(stack: LocalStack, repository: dict[str, Any]) -> str:
    return f"{stack.api_url}/api/v1/webhooks/repositories/{repository['id']}"


def test_github_push_deploys_the_pushed_commit(
    stack: LocalStack, api: httpx.Client, git_repo: Path, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    repository, application, scripted = deployed
    head = commit(git_repo, "app/compose.yaml", compose(greeting="pushed"))
    body = github_push_body(head)

    response = httpx.post(
        _webhook_url(stack, repository),
        content=body,
        headers=github_push_headers(repository["webhook_secret"], body),
    )

    assert response.status_code == 202, response.text
    message = scripted.take()
    assert message.request.commit == head
    scripted.succeed(message)
    wait_for_status(api, application["id"], "synced", commit=head)
    job = wait_for(
        lambda: (
            (j := api.get(f"/jobs/{response.json()['job_id']}").json())["status"] == "succeeded"
            and j
        ),
        what="the job to finish",
    )
    assert job["result"]["applications"] == {application["id"]: "deploying"}
    assert get_repository(repository["id"]).sync_status.value == "success"


def test_github_form_encoded_push_is_read(
    stack: LocalStack, git_repo: Path, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    repository, _application, scripted = deployed
    head = commit(git_repo, "app/compose.yaml", compose(greeting="form"))
    body = urlencode({"payload": github_push_body(head).decode()}).encode()
    headers = github_push_headers(repository["webhook_secret"], body) | {
        "Content-Type": "application/x-www-form-urlencoded"
    }

    response = httpx.post(_webhook_url(stack, repository), content=body, headers=headers)

    assert response.status_code == 202, response.text
    assert scripted.take().request.commit == head


def test_github_ping_and_other_events_answer_200_and_are_logged(
    stack: LocalStack, api: httpx.Client, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    repository, _application, _scripted = deployed
    url, secret = _webhook_url(stack, repository), repository["webhook_secret"]
    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    issue = json.dumps({"action": "opened", "issue": {"number": 1}}).encode()

    pong = httpx.post(url, content=ping, headers=github_push_headers(secret, ping, "ping"))
    ignored = httpx.post(
        url, content=issue, headers=github_push_headers(secret, issue, "issues", "issue-1")
    )
    refused = httpx.post(
        url, content=issue, headers=github_push_headers("wrong", issue, "push", "bad-1")
    )

    assert (pong.status_code, ignored.status_code, refused.status_code) == (200, 200, 401)
    assert "ignored" in ignored.json()
    log = api.get(f"/repositories/{repository['id']}/deliveries").json()
    by_id = {d["delivery_id"]: d for d in log}
    assert by_id["issue-1"]["outcome"] == "ignored" and by_id["issue-1"]["reason"]
    assert (by_id["bad-1"]["outcome"], by_id["bad-1"]["status_code"]) == ("refused", 401)
    assert any(d["reason"] == "ping" for d in log)


def test_gitlab_and_gitea_pushes_are_verified_their_way(
    stack: LocalStack, git_repo: Path, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    repository, _application, scripted = deployed
    secret, url = repository["webhook_secret"], _webhook_url(stack, repository)
    first = commit(git_repo, "app/compose.yaml", compose(greeting="gitlab"))
    gitlab_body = json.dumps(
        {"object_kind": "push", "ref": "refs/heads/main", "after": first, "checkout_sha": first}
    ).encode()
    gitlab = httpx.post(
        url,
        content=gitlab_body,
        headers={
            "X-Gitlab-Event": "Push Hook",
            "X-Gitlab-Token": secret,
            "Content-Type": "application/json",
        },
    )
    assert gitlab.status_code == 202, gitlab.text
    scripted.succeed(scripted.take())

    second = commit(git_repo, "app/compose.yaml", compose(greeting="gitea"))
    gitea_body = json.dumps({"ref": "refs/heads/main", "after": second}).encode()
    signature = hmac.new(secret.encode(), gitea_body, hashlib.sha256).hexdigest()
    gitea = httpx.post(
        url,
        content=gitea_body,
        headers={
            "X-Gitea-Event": "push",
            "X-Gitea-Signature": signature,
            "Content-Type": "application/json",
        },
    )
    assert gitea.status_code == 202, gitea.text
    assert scripted.take().request.commit == second
    wrong = httpx.post(
        url, content=gitea_body, headers={"X-Gitea-Event": "push", "X-Gitea-Signature": "00" * 32}
    )
    assert wrong.status_code == 401


def test_github_tag_push_syncs_the_branches_containing_it(
    stack: LocalStack, git_repo: Path, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    repository, _application, scripted = deployed
    head = commit(git_repo, "app/compose.yaml", compose(greeting="tagged"))
    body = github_push_body(head, "refs/tags/v1.0.0")

    response = httpx.post(
        _webhook_url(stack, repository),
        content=body,
        headers=github_push_headers(repository["webhook_secret"], body),
    )

    assert response.status_code == 202, response.text
    assert response.json()["tag"] == "v1.0.0"
    assert scripted.take().request.commit == head  # main contains the tag; main's latest deploys


def test_duplicate_deliveries_deploy_each_commit_once(
    stack: LocalStack, api: httpx.Client, git_repo: Path, deployed: tuple[dict, dict, ScriptedAgent]
) -> None:
    repository, application, scripted = deployed
    head = commit(git_repo, "app/compose.yaml", compose(greeting="once"))
    body = github_push_body(head)
    url, secret = _webhook_url(stack, repository), repository["webhook_secret"]
    same = github_push_headers(secret, body, delivery="redelivered-1")

    def deliver(number: int) -> httpx.Response:
        # Half are redeliveries of one delivery, half are distinct deliveries of the same push.
        headers = (
            same if number % 2 else github_push_headers(secret, body, delivery=f"distinct-{number}")
        )
        return httpx.post(url, content=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(deliver, range(20)))

    assert {a.status_code for a in answers} == {202}
    assert (
        len(
            {
                a.json()["job_id"]
                for a in answers
                if a.request.headers["X-GitHub-Delivery"] == "redelivered-1"
            }
        )
        == 1
    )
    first = scripted.take()
    assert first.request.commit == head
    scripted.succeed(first)
    wait_for_status(api, application["id"], "synced", commit=head)
    wait_for_idle_sync(repository["id"], timeout=60)
    sfn = boto3.client("stepfunctions")
    executions = [
        e["name"]
        for e in sfn.list_executions(
            stateMachineArn=stack.cloud.deploy_state_machine_arn, maxResults=1000
        )["executions"]
        if e["name"].startswith(f"{application['id']}-{head[:12]}")
    ]
    assert len(executions) == 1
    assert [
        e["status"]
        for e in events(api, application["id"])
        if e["commit"] == head and e["type"] == "commit_sync"
    ].count("succeeded") == 1


def test_github_actions_run_deploys_its_commit_and_rules_refuse_others(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str, actions_issuer: Issuer
) -> None:
    first = commit(git_repo, "app/compose.yaml", compose())
    created = api.post(
        "/repositories",
        json={
            "url": f"file://{git_repo}",
            "sync_type": "manual",
            "github_actions": True,
            "github_repository": "Octo-Org/Stack",
            "actions_branches": ["main"],
        },
    ).json()
    application, scripted = deployed_once(api, created["id"], unique, commit=first)
    head = commit(git_repo, "app/compose.yaml", compose(greeting="actions"))
    url = f"{stack.api_url}/api/v1/github-actions"

    def call(token: str, body: object = None) -> httpx.Response:
        return httpx.post(url, headers={"Authorization": f"Bearer {token}"}, json=body)

    accepted = call(actions_token(actions_issuer, stack.api_url, head))
    assert accepted.status_code == 202, accepted.text
    message = scripted.take()
    assert message.request.commit == head
    scripted.succeed(message)
    wait_for_status(api, application["id"], "synced", commit=head)
    assert get_repository(created["id"]).github_repository_id == "712345678"
    assert [e["trigger"] for e in events(api, application["id"])][:2] == ["github_actions"] * 2

    assert (
        call(actions_token(actions_issuer, "https://github.com/octo-org", head)).status_code == 401
    )
    assert call("not-a-jwt").status_code == 401
    assert (
        call(
            actions_token(actions_issuer, stack.api_url, head, event_name="pull_request")
        ).status_code
        == 403
    )
    assert (
        call(actions_token(actions_issuer, stack.api_url, head, ref="refs/heads/dev")).status_code
        == 403
    )
    renamed = actions_token(actions_issuer, stack.api_url, head, repository_id="999")
    assert call(renamed).status_code == 403  # the id recorded on first use decides now
    assert call(actions_token(actions_issuer, stack.api_url, head), body=["x"]).status_code == 422
    from ferry.domain.models import RepositorySyncStatus
    from ferry.sync.status import update_repository_status

    update_repository_status(created["id"], RepositorySyncStatus.SYNCING)
    busy = call(actions_token(actions_issuer, stack.api_url, head), body={"sync_repo": True})
    assert busy.status_code == 409 and "in flight" in busy.json()["detail"]
    update_repository_status(created["id"], RepositorySyncStatus.SUCCESS)


def test_polling_schedule_deploys_new_commits_and_does_nothing_without_them(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    first = commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="polling")
    application, scripted = deployed_once(api, repository["id"], unique, commit=first)
    head = commit(git_repo, "app/compose.yaml", compose(greeting="polled"))

    assert stack.cloud.scheduler is not None
    stack.cloud.scheduler.fire_all()  # the template's schedule, as EventBridge would

    message = scripted.take()
    assert message.request.commit == head
    scripted.succeed(message)
    wait_for_status(api, application["id"], "synced", commit=head)
    wait_for_idle_sync(repository["id"])
    polled = get_repository(repository["id"])
    assert polled.polled_at is not None
    finished_deployments(api, application["id"])  # its event is completed a moment after
    before = events(api, application["id"])

    # Due again later: the poll finds the recorded commit and does nothing at all.
    later = next_poll_at(polled)
    assert later is not None
    assert repository["id"] in poll_due_repositories(now=later)
    wait_for_idle_sync(repository["id"])
    assert events(api, application["id"]) == before
    assert get_repository(repository["id"]).updated_at == polled.updated_at


def test_polling_failing_repository_backs_off(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="polling")
    agent = create_agent(api, f"host-{unique}")
    # Its branch was deleted after it was created (the API refuses one that does not exist).
    store_application(
        name=f"ghost-{unique}",
        repository_id=repository["id"],
        agent_id=agent["id"],
        branch="ghost",
        path="app/compose.yaml",
    )
    assert api.post(f"/repositories/{repository['id']}/sync").status_code == 202
    wait_for(lambda: get_repository(repository["id"]).failures >= 1, what="a failed sync")
    failing = get_repository(repository["id"])
    poll_due_repositories(now=next_poll_at(failing) if failing.polled_at else None)
    wait_for(lambda: get_repository(repository["id"]).failures >= 2, what="a second failed sync")
    repo = get_repository(repository["id"])
    assert repo.polled_at is not None
    due = next_poll_at(repo)
    assert due is not None
    assert due - repo.polled_at >= timedelta(seconds=4 * repo.polling_interval_seconds)
    assert "branch ghost" in (repo.last_sync_error or "")


def test_manual_sync_while_one_is_in_flight_answers_409(api: httpx.Client, git_repo: Path) -> None:
    from ferry.domain.models import RepositorySyncStatus
    from ferry.sync.status import update_repository_status

    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    update_repository_status(repository["id"], RepositorySyncStatus.SYNCING)

    response = api.post(f"/repositories/{repository['id']}/sync")

    assert response.status_code == 409
    assert "in flight" in response.json()["detail"]
