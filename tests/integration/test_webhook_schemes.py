"""The webhook schemes not covered elsewhere, through real HTTP against the local stack with real
HMACs: Azure DevOps service hooks (basic auth), Forgejo's own signature, GitLab signing tokens
(Standard Webhooks), and a GitHub push Ferry cannot act on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from ferry.local.stack import LocalStack
from tests.helpers import (
    ScriptedAgent,
    agent_queue_url,
    commit,
    compose,
    create_repository,
    deployed_once,
    events,
    finished_deployments,
    wait_for_idle_sync,
    wait_for_status,
)

Deployed = tuple[dict[str, Any], dict[str, Any], ScriptedAgent]


@pytest.fixture
def deployed(api: httpx.Client, git_repo: Path, unique: str) -> Deployed:
    """A webhook repository whose application is deployed (scripted agent) at the first commit."""
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique)
    finished_deployments(api, application["id"])  # its event is completed a moment after
    return repository, application, scripted


def _url(stack: LocalStack, repository: dict[str, Any]) -> str:
    return f"{stack.api_url}/api/v1/webhooks/repositories/{repository['id']}"


def _deliveries(api: httpx.Client, repository: dict[str, Any]) -> list[dict[str, Any]]:
    response = api.get(f"/repositories/{repository['id']}/deliveries")
    assert response.status_code == 200, response.text
    return list(response.json())


def _hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _deploys_at(
    api: httpx.Client, scripted: ScriptedAgent, application: dict[str, Any], sha: str
) -> None:
    """The agent is handed a deploy of `sha`; once it succeeds the application is synced there."""
    message = scripted.take()
    assert message.request.commit == sha
    scripted.succeed(message)
    wait_for_status(api, application["id"], "synced", commit=sha)


def _nothing_queued(
    api: httpx.Client,
    repository: dict[str, Any],
    application: dict[str, Any],
    before: list[dict[str, Any]],
) -> None:
    """No sync ran for the application and its agent was handed nothing. A wrongly queued sync
    job would be run before the sync queue is idle, and would record an event."""
    wait_for_idle_sync(repository["id"])
    assert events(api, application["id"]) == before
    queue_url = agent_queue_url(application["agent_id"])
    handed = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1
    )
    assert not handed.get("Messages"), handed


# Azure DevOps


def _azure_push(sha: str, parent: str, event_id: str) -> bytes:
    """A `git.push` service hook shaped like the ones Azure DevOps sends ("Code pushed")."""
    project = {"id": "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c", "name": "ops"}
    repository = {
        "id": "278d5cd2-584d-4b63-824a-2ba458937249",
        "name": "stack",
        "url": "https://dev.azure.com/contoso/_apis/git/repositories/278d5cd2",
        "project": project,
        "defaultBranch": "refs/heads/main",
        "remoteUrl": "https://dev.azure.com/contoso/ops/_git/stack",
    }
    return json.dumps(
        {
            "subscriptionId": "00000000-0000-0000-0000-000000000000",
            "notificationId": 3,
            "id": event_id,
            "eventType": "git.push",
            "publisherId": "tfs",
            "message": {"text": "Mona pushed updates to stack:main."},
            "resource": {
                "commits": [
                    {
                        "commitId": sha,
                        "author": {"name": "Mona", "email": "mona@example.com"},
                        "comment": "Bump web image",
                    }
                ],
                "refUpdates": [
                    {"name": "refs/heads/main", "oldObjectId": parent, "newObjectId": sha}
                ],
                "repository": repository,
                "pushedBy": {"displayName": "Mona", "uniqueName": "mona@example.com"},
                "pushId": 14,
                "date": "2026-01-01T00:00:00Z",
            },
            "resourceVersion": "1.0",
            "resourceContainers": {"project": {"id": project["id"]}},
            "createdDate": "2026-01-01T00:00:01Z",
        }
    ).encode()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_azure_devops_push_with_basic_auth_syncs_the_pushed_commit_and_wrong_password_401(
    stack: LocalStack, api: httpx.Client, git_repo: Path, deployed: Deployed
) -> None:
    repository, application, scripted = deployed
    parent = wait_for_status(api, application["id"], "synced")["commit"]
    head = commit(git_repo, "app/compose.yaml", compose(greeting="azure"))
    body = _azure_push(head, parent, str(uuid.uuid4()))
    url = _url(stack, repository)
    before = events(api, application["id"])

    wrong = httpx.post(
        url,
        content=body,
        headers={
            "Authorization": _basic("azure", "not-the-secret"),
            "Content-Type": "application/json",
        },
    )

    assert wrong.status_code == 401, wrong.text
    _nothing_queued(api, repository, application, before)
    (refused,) = [d for d in _deliveries(api, repository) if d["outcome"] == "refused"]
    assert (refused["status_code"], refused["job_id"]) == (401, None)

    accepted = httpx.post(
        url,
        content=body,
        headers={
            "Authorization": _basic("azure", repository["webhook_secret"]),
            "Content-Type": "application/json; charset=utf-8",
        },
    )

    assert accepted.status_code == 202, accepted.text
    assert (accepted.json()["branch"], accepted.json()["commit"]) == ("main", head)
    _deploys_at(api, scripted, application, head)
    logged = {d["job_id"]: d for d in _deliveries(api, repository)}
    assert logged[accepted.json()["job_id"]]["outcome"] == "accepted"


# Forgejo


def _forgejo_headers(body: bytes, signature: str, gitea_signature: str) -> dict[str, str]:
    """What Forgejo sends: its own headers, and Gitea's for compatibility."""
    delivery = str(uuid.uuid4())
    return {
        "Content-Type": "application/json",
        "User-Agent": "Go-http-client/1.1",
        "X-Forgejo-Event": "push",
        "X-Forgejo-Event-Type": "push",
        "X-Forgejo-Delivery": delivery,
        "X-Forgejo-Signature": signature,
        "X-Gitea-Event": "push",
        "X-Gitea-Event-Type": "push",
        "X-Gitea-Delivery": delivery,
        "X-Gitea-Signature": gitea_signature,
    }


def _forgejo_push(sha: str) -> bytes:
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 39 + "1",
            "after": sha,
            "compare_url": f"https://codeberg.example/ops/stack/compare/{sha}",
            "commits": [{"id": sha, "message": "Bump web image\n"}],
            "head_commit": {"id": sha, "message": "Bump web image\n"},
            "repository": {"full_name": "ops/stack", "default_branch": "main"},
            "pusher": {"login": "ops"},
        }
    ).encode()


def test_forgejo_push_signed_with_forgejo_signature_syncs_and_bad_signature_401(
    stack: LocalStack, api: httpx.Client, git_repo: Path, deployed: Deployed
) -> None:
    repository, application, scripted = deployed
    secret, url = repository["webhook_secret"], _url(stack, repository)
    head = commit(git_repo, "app/compose.yaml", compose(greeting="forgejo"))
    body = _forgejo_push(head)
    before = events(api, application["id"])

    # Forgejo's own signature decides, even beside a valid Gitea one.
    forged = httpx.post(
        url, content=body, headers=_forgejo_headers(body, "00" * 32, _hex_hmac(secret, body))
    )
    wrong_key = httpx.post(
        url,
        content=body,
        headers=_forgejo_headers(body, _hex_hmac("not-the-secret", body), "00" * 32),
    )

    assert (forged.status_code, wrong_key.status_code) == (401, 401)
    _nothing_queued(api, repository, application, before)
    refused = [d for d in _deliveries(api, repository) if d["outcome"] == "refused"]
    assert [(d["sender"], d["status_code"]) for d in refused] == [("forgejo", 401)] * 2

    signature = _hex_hmac(secret, body)
    accepted = httpx.post(url, content=body, headers=_forgejo_headers(body, signature, signature))

    assert accepted.status_code == 202, accepted.text
    assert (accepted.json()["branch"], accepted.json()["commit"]) == ("main", head)
    _deploys_at(api, scripted, application, head)


# GitLab signing tokens (Standard Webhooks)


def _gitlab_signed_headers(
    secret: str, signed_body: bytes, *, token: str | None = None
) -> dict[str, str]:
    """GitLab's headers for a hook with a signing token: `webhook-signature` is `v1,` + base64
    HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the secret's bytes (a
    Ferry webhook secret is not a `whsec_` secret)."""
    message_id = str(uuid.uuid4())
    timestamp = str(int(time.time()))
    signed = f"{message_id}.{timestamp}.".encode() + signed_body
    signature = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/18.3.0",
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "X-Gitlab-Instance": "https://gitlab.example.com",
        "Idempotency-Key": str(uuid.uuid4()),
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": f"v1,{signature.decode()}",
    }
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return headers


def _gitlab_push(sha: str) -> bytes:
    return json.dumps(
        {
            "object_kind": "push",
            "event_name": "push",
            "before": "0" * 39 + "1",
            "after": sha,
            "ref": "refs/heads/main",
            "ref_protected": True,
            "checkout_sha": sha,
            "user_username": "ops",
            "project": {"path_with_namespace": "ops/stack", "default_branch": "main"},
            "commits": [{"id": sha, "message": "Bump web image\n"}],
            "total_commits_count": 1,
        }
    ).encode()


def test_gitlab_signing_token_push_syncs_and_tampered_body_401(
    stack: LocalStack, api: httpx.Client, git_repo: Path, deployed: Deployed
) -> None:
    repository, application, scripted = deployed
    secret, url = repository["webhook_secret"], _url(stack, repository)
    parent = wait_for_status(api, application["id"], "synced")["commit"]
    head = commit(git_repo, "app/compose.yaml", compose(greeting="gitlab-signed"))
    body = _gitlab_push(head)
    before = events(api, application["id"])

    # The signature covers the body: the same headers over another body (here, one asking for
    # the previous commit) are refused, even with a valid secret token beside them.
    tampered = httpx.post(
        url,
        content=_gitlab_push(parent),
        headers=_gitlab_signed_headers(secret, body, token=secret),
    )

    assert tampered.status_code == 401, tampered.text
    _nothing_queued(api, repository, application, before)
    (refused,) = [d for d in _deliveries(api, repository) if d["outcome"] == "refused"]
    assert (refused["sender"], refused["status_code"]) == ("gitlab", 401)
    assert refused["reason"] == "signature mismatch"

    accepted = httpx.post(url, content=body, headers=_gitlab_signed_headers(secret, body))

    assert accepted.status_code == 202, accepted.text
    assert (accepted.json()["branch"], accepted.json()["commit"]) == ("main", head)
    _deploys_at(api, scripted, application, head)


# A GitHub push Ferry cannot act on


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"repository": {"full_name": "octo-org/stack"}}, "without ref"),
        ({"after": "1" * 40, "head_commit": {"id": "1" * 40}}, "without ref"),
        ({"ref": "refs/heads/main", "head_commit": None}, "without a commit"),
    ],
    ids=["neither", "no-ref", "no-commit"],
)
def test_github_push_without_ref_or_commit_answers_400_with_reason(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    payload: dict[str, Any],
    reason: str,
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    body = json.dumps(payload).encode()
    delivery = str(uuid.uuid4())

    response = httpx.post(
        _url(stack, repository),
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": "sha256=" + _hex_hmac(repository["webhook_secret"], body),
        },
    )

    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and reason in detail
    (logged,) = _deliveries(api, repository)
    assert (logged["delivery_id"], logged["outcome"], logged["status_code"]) == (
        delivery,
        "refused",
        400,
    )
    assert logged["reason"] == detail and logged["job_id"] is None


def _bitbucket_headers(body: bytes, secret: str, event: str = "repo:push") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "Bitbucket-Webhooks/2.0",
        "X-Event-Key": event,
        "X-Request-UUID": str(uuid.uuid4()),
        "X-Hub-Signature": "sha256=" + _hex_hmac(secret, body),
    }


def test_bitbucket_cloud_push_and_ping_are_verified_and_logged(
    stack: LocalStack, api: httpx.Client, git_repo: Path, deployed: Deployed
) -> None:
    repository, application, scripted = deployed
    secret, url = repository["webhook_secret"], _url(stack, repository)
    head = commit(git_repo, "app/compose.yaml", compose(greeting="bitbucket"))
    body = json.dumps(
        {
            "push": {
                "changes": [
                    {
                        "new": {"type": "branch", "name": "main", "target": {"hash": head}},
                        "old": {"type": "branch", "name": "main", "target": {"hash": "0" * 39}},
                        "closed": False,
                    }
                ]
            },
            "repository": {"full_name": "acme/stack"},
        }
    ).encode()
    before = events(api, application["id"])

    forged = httpx.post(url, content=body, headers=_bitbucket_headers(body, "not-the-secret"))

    assert forged.status_code == 401, forged.text
    _nothing_queued(api, repository, application, before)

    ping_body = b'{"test": true}'
    ping = httpx.post(
        url, content=ping_body, headers=_bitbucket_headers(ping_body, secret, "diagnostics:ping")
    )
    accepted = httpx.post(url, content=body, headers=_bitbucket_headers(body, secret))

    assert ping.status_code == 200, ping.text
    assert accepted.status_code == 202, accepted.text
    _deploys_at(api, scripted, application, head)
    logged = [(d["sender"], d["outcome"], d["status_code"]) for d in _deliveries(api, repository)]
    assert ("bitbucket", "accepted", 202) in logged
    assert ("bitbucket", "ignored", 200) in logged
    assert ("bitbucket", "refused", 401) in logged
