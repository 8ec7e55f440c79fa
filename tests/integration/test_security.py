"""Limits and credentials: 413, 429, SSRF refusals, once-only secrets, no secret in any output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ferry.local.stack import LocalStack
from ferry.settings import get_settings
from ferry.store.changes import changes_after
from tests.helpers import (
    ScriptedAgent,
    agent_queue_url,
    commit,
    compose,
    create_agent,
    create_application,
    create_repository,
    push_webhook,
    wait_for,
    wait_for_idle_sync,
    wait_for_status,
)


def test_webhook_body_over_one_mib_answers_413_and_queues_nothing(
    stack: LocalStack, api: httpx.Client, git_repo: Path
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    url = f"{stack.api_url}/api/v1/webhooks/repositories/{repository['id']}"
    auth = {"Authorization": f"Bearer {repository['webhook_secret']}"}
    padding = "x" * (1024 * 1024)

    declared = httpx.post(url, headers=auth, json={"branch": "main", "padding": padding})

    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"y" * (300 * 1024)

    streamed = httpx.post(url, headers=auth, content=chunks())  # no Content-Length

    assert (declared.status_code, streamed.status_code) == (413, 413)
    stack.cloud.pollers[0].poll_once(wait_seconds=1)
    assert api.get(f"/repositories/{repository['id']}").json()["sync_status"] == "unknown"


def test_webhook_flood_from_one_source_answers_429_with_retry_after(
    stack: LocalStack, api: httpx.Client, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    monkeypatch.setattr(get_settings(), "webhook_rate_per_minute", 3)

    answers = [push_webhook(stack.api_url, repository["id"], "wrong") for _ in range(8)]

    limited = [r for r in answers if r.status_code == 429]
    assert limited, [r.status_code for r in answers]
    assert 1 <= int(limited[0].headers["retry-after"]) <= 61
    assert "retry in" in limited[0].json()["detail"]


def test_webhook_refused_flood_does_not_lock_out_signed_deliveries(
    stack: LocalStack, api: httpx.Client, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    monkeypatch.setattr(get_settings(), "webhook_rate_per_minute", 3)

    refused = [push_webhook(stack.api_url, repository["id"], "wrong") for _ in range(8)]
    genuine = push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])

    # Refusals counted before this test in the same minute may already have reached the limit.
    assert {r.status_code for r in refused} <= {401, 429}
    assert refused[-1].status_code == 429
    assert genuine.status_code == 202, genuine.text


def test_webhook_accepted_deliveries_are_limited_per_repository(
    stack: LocalStack, api: httpx.Client, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    busy, quiet = create_repository(api, git_repo), create_repository(api, git_repo)
    monkeypatch.setattr(get_settings(), "webhook_rate_per_minute", 3)

    answers = [push_webhook(stack.api_url, busy["id"], busy["webhook_secret"]) for _ in range(5)]
    other = push_webhook(stack.api_url, quiet["id"], quiet["webhook_secret"])

    assert [r.status_code for r in answers][:3] == [202, 202, 202]
    assert 429 in [r.status_code for r in answers[3:]]
    assert other.status_code == 202, other.text


@pytest.mark.parametrize(
    "url",
    ["json://10.1.2.3/hook", "json://169.254.169.254/latest", "json://192.168.1.10:8080/"],
)
def test_notification_to_private_address_is_refused(api: httpx.Client, url: str) -> None:
    target = api.post("/notifications", json={"name": "private", "url": url}).json()

    result = api.post(f"/notifications/{target['id']}/test").json()

    assert result["ok"] is False
    assert "refusing" in result["error"]
    shown = api.get(f"/notifications/{target['id']}").json()
    assert (shown["last_status"], shown["last_error"]) == ("failed", result["error"])


def test_notification_bad_url_answers_400(api: httpx.Client) -> None:
    response = api.post("/notifications", json={"name": "x", "url": "nonsense://"})
    assert response.status_code == 400


def test_agent_token_rotation_shows_new_token_once_and_retires_old(
    stack: LocalStack, api: httpx.Client, unique: str
) -> None:
    agent = create_agent(api, f"host-{unique}")
    session = f"{stack.api_url}/api/v1/agent/session"
    assert (
        httpx.get(session, headers={"Authorization": f"Bearer {agent['token']}"}).status_code == 200
    )

    rotated = api.post(f"/agents/{agent['id']}/token").json()["token"]

    assert (
        httpx.get(session, headers={"Authorization": f"Bearer {agent['token']}"}).status_code == 401
    )
    assert httpx.get(session, headers={"Authorization": f"Bearer {rotated}"}).status_code == 200
    assert rotated not in api.get(f"/agents/{agent['id']}").text
    assert api.get(f"/agents/{agent['id']}").json()["online"] is True


def test_webhook_secret_rotation_retires_old_secret(
    stack: LocalStack, api: httpx.Client, git_repo: Path
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)

    rotated = api.post(f"/repositories/{repository['id']}/webhook-secret").json()

    assert rotated["webhook_secret"] != repository["webhook_secret"]
    assert (
        push_webhook(stack.api_url, repository["id"], repository["webhook_secret"]).status_code
        == 401
    )
    assert (
        push_webhook(stack.api_url, repository["id"], rotated["webhook_secret"]).status_code == 202
    )


def test_secrets_never_appear_in_logs_events_or_responses(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    unique: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A whole flow, then every output it produced is searched for every secret it created."""
    assert stack.state is not None
    commit(git_repo, "app/compose.yaml", compose())
    repo_password = f"repo-password-{unique}"
    notify_token = f"notifytoken{unique}"
    created_repo = api.post(
        "/repositories",
        json={
            "url": f"file://{git_repo}",
            "auth": {"kind": "basic", "username": "ci", "secret": repo_password},
        },
    ).json()
    agent = create_agent(api, f"host-{unique}")
    rotated_agent_token = api.post(f"/agents/{agent['id']}/token").json()["token"]
    target = api.post(
        "/notifications", json={"name": "hook", "url": f"json://ferry:{notify_token}@127.0.0.1:9/"}
    ).json()
    application = create_application(
        api, name=f"app-{unique}", repository_id=created_repo["id"], agent_id=agent["id"]
    )
    api.patch(f"/applications/{application['id']}", json={"notification_ids": [target["id"]]})
    scripted = ScriptedAgent(agent_queue_url(agent["id"]))
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced")
    push_webhook(stack.api_url, created_repo["id"], created_repo["webhook_secret"])
    push_webhook(stack.api_url, created_repo["id"], "a-wrong-secret-attempt")
    api.post(f"/notifications/{target['id']}/test")
    wait_for_idle_sync(created_repo["id"])
    rotated_secret = api.post(f"/repositories/{created_repo['id']}/webhook-secret").json()[
        "webhook_secret"
    ]

    responses = [
        api.get(path).text
        for path in (
            "/repositories",
            f"/repositories/{created_repo['id']}",
            "/agents",
            f"/agents/{agent['id']}",
            "/applications",
            f"/applications/{application['id']}",
            f"/applications/{application['id']}/events",
            "/notifications",
            f"/notifications/{target['id']}",
        )
    ]
    feed = json.dumps([c.model_dump(mode="json") for c in changes_after(0, limit=10_000)])
    logs = capfd.readouterr()
    agent_log = stack.home / "logs" / "agent.log"
    outputs = "\n".join(
        [*responses, feed, logs.out, logs.err, agent_log.read_text() if agent_log.exists() else ""]
    )
    secrets = {
        "admin token": stack.state.token,
        "agent token": agent["token"],
        "rotated agent token": rotated_agent_token,
        "webhook secret": created_repo["webhook_secret"],
        "rotated webhook secret": rotated_secret,
        "repository password": repo_password,
        "notification token": notify_token,
        "secret key": get_settings().secret_key,
    }
    leaked = [name for name, value in secrets.items() if value and value in outputs]
    assert leaked == []
    wait_for(
        lambda: "****" in api.get(f"/notifications/{target['id']}").json()["display_url"],
        what="a redacted notification URL",
    )


def test_agent_session_carries_short_lived_credentials_scoped_to_its_queue(
    stack: LocalStack, api: httpx.Client, unique: str
) -> None:
    agent = create_agent(api, f"host-{unique}")
    session = httpx.get(
        f"{stack.api_url}/api/v1/agent/session",
        headers={"Authorization": f"Bearer {agent['token']}"},
    ).json()

    credentials = session["credentials"]
    assert credentials["access_key_id"] and credentials["session_token"]
    assert session["queue_url"].endswith(f"agent-{agent['id']}")
    from ferry.manage.agent_sessions import agent_policy

    policy = agent_policy("arn:aws:sqs:us-east-1:123456789012:ferry-agent-x")
    assert policy["Statement"][0]["Resource"] == "arn:aws:sqs:us-east-1:123456789012:ferry-agent-x"
    assert {a for s in policy["Statement"] for a in s["Action"]} == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "states:SendTaskHeartbeat",
    }
