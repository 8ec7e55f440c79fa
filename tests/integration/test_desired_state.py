"""The control plane's side of keeping a host at the desired state, through the agent routes of
the local stack with a scripted agent: drift marks the application out of sync and self-heal
redeploys it within the flap guard; image reports notify, or redeploy once a minute with fresh
pulls; the image webhook puts a check hint on the agent's queue."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import signal
import threading
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from ferry.local.stack import LocalStack
from ferry.store.tables import ApplicationRow
from tests.helpers import (
    JsonReceiver,
    commit,
    compose,
    create_repository,
    deployed_once,
    events,
    get_application,
    wait_for,
    wait_for_status,
)
from tests.integration.test_cli_commands import Ferry, Watching, ferry, ok

__all__ = ["ferry"]  # the CLI fixture, shared with test_cli_commands

OLD = "sha256:" + "a1" * 32
NEW = "sha256:" + "b2" * 32
IMAGE = "127.0.0.1:5000/shop:latest"


class Host:
    """An application deployed once by a scripted agent, and that agent's own API calls."""

    def __init__(
        self, stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str, **settings: Any
    ) -> None:
        commit(git_repo, "app/compose.yaml", compose())
        repository = create_repository(api, git_repo)
        self.application, self.scripted = deployed_once(api, repository["id"], unique)
        self.id = str(self.application["id"])
        self.api = api
        agent = api.get(f"/agents/{self.application['agent_id']}").json()
        token = api.post(f"/agents/{agent['id']}/token").json()["token"]
        self.agent = httpx.Client(
            base_url=f"{stack.api_url}/api/v1/agent",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        if settings:
            changed = api.patch(f"/applications/{self.id}", json=settings)
            assert changed.status_code == 200, changed.text

    def drift(self, *differences: str) -> None:
        response = self.agent.post(
            "/drift", json={"application_id": self.id, "differences": list(differences)}
        )
        assert response.status_code == 204, response.text

    def images(self, changes: list[dict[str, str]], error: str | None = None) -> dict[str, Any]:
        response = self.agent.post(
            "/images", json={"application_id": self.id, "changes": changes, "error": error}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in events(self.api, self.id) if e["type"] == kind]

    def queue_is_empty(self) -> bool:
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self.scripted.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(int(value) == 0 for value in attributes.values())


@pytest.fixture
def target(api: httpx.Client, receiver: JsonReceiver, unique: str) -> str:
    created = api.post("/notifications", json={"name": f"n-{unique}", "url": receiver.url})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _titled(receiver: JsonReceiver, words: str) -> list[str]:
    return [title for title in receiver.titles() if words in title]


# --- drift -------------------------------------------------------------------------------------


def test_drift_report_out_of_sync_with_reason_then_back_in_sync(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    host = Host(stack, api, git_repo, unique)

    host.drift("web stopped", "worker missing")

    application = get_application(api, host.id)
    assert application["sync_status"] == "out_of_sync"
    assert application["last_sync_error"] == "drift: web stopped, worker missing"
    [drift] = host.events("drift")
    assert (drift["trigger"], drift["status"]) == ("drift", "failed")
    assert drift["error"] == "web stopped, worker missing"
    host.drift("web stopped", "worker missing")  # said again (an agent restarted): nothing new
    assert len(host.events("drift")) == 1
    assert host.queue_is_empty()  # no self-heal: nothing deployed

    host.drift()

    application = get_application(api, host.id)
    assert (application["sync_status"], application["last_sync_error"]) == ("synced", None)
    back = host.events("drift")[0]
    assert (back["status"], back["message"]) == ("succeeded", "back at the deployed state")


def test_drift_report_while_a_deploy_failed_keeps_the_deploy_error(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    host = Host(stack, api, git_repo, unique, self_heal=True)
    api.post(f"/applications/{host.id}/deploy")
    host.scripted.fail(host.scripted.take(), "docker compose up failed: port is taken")
    wait_for_status(api, host.id, "out_of_sync")

    host.drift("web stopped")

    application = get_application(api, host.id)
    assert application["last_sync_error"] == "docker compose up failed: port is taken"
    assert host.events("drift")[0]["error"] == "web stopped"  # recorded all the same
    assert host.queue_is_empty()  # and not healed: redeploying would fail the same way


def test_drift_report_other_agents_application_answered_as_unknown(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    host = Host(stack, api, git_repo, unique)
    other = Host(stack, api, git_repo, f"{unique}x")
    response = other.agent.post("/drift", json={"application_id": host.id, "differences": ["x"]})
    assert response.status_code == 404, response.text  # as for an application nobody has
    assert get_application(api, host.id)["sync_status"] == "synced"


def test_drift_self_heal_redeploys_until_the_flap_guard_stops_and_says_so(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    unique: str,
    receiver: JsonReceiver,
    target: str,
) -> None:
    host = Host(stack, api, git_repo, unique, self_heal=True, notification_ids=[target])
    # As a row stored before self-heal existed: no list of heals at all.
    ApplicationRow(id=host.id).update(actions=[ApplicationRow.self_heal_at.remove()])

    for heal in range(1, 4):
        host.drift("web stopped")
        taken = host.scripted.take()
        running = next(e for e in host.events("deployment") if e["status"] == "running")
        assert running["trigger"] == "self_heal"
        assert running["message"].endswith("(healing web stopped)")
        assert not taken.request.pull
        host.scripted.succeed(taken)
        wait_for_status(api, host.id, "synced")
        wait_for(
            lambda: len(_titled(receiver, "deployed (self-heal)")) == heal,  # noqa: B023 - waited for here
            what=f"heal {heal}'s notification",
        )

    host.drift("web stopped")

    application = get_application(api, host.id)
    assert application["sync_status"] == "out_of_sync"
    assert application["last_sync_error"] == "drift: web stopped"
    assert application["self_heal_stopped_at"] is not None
    stopped = host.events("drift")[0]
    assert (stopped["trigger"], stopped["status"]) == ("self_heal", "failed")
    assert "self-heal stopped: healed 3 times within 10 minutes" in stopped["error"]
    wait_for(lambda: _titled(receiver, "self-heal stopped"), what="the guard's notification")
    assert host.queue_is_empty()

    host.drift()  # someone started it by hand
    host.drift("web stopped")  # and it stopped again: still not healed, not told twice
    assert host.queue_is_empty()
    assert len(_titled(receiver, "self-heal stopped")) == 1

    resumed = api.patch(f"/applications/{host.id}", json={"self_heal": True})
    assert resumed.json()["self_heal_stopped_at"] is None
    host.drift()
    host.drift("web stopped")
    host.scripted.succeed(host.scripted.take())  # healing again
    wait_for_status(api, host.id, "synced")


def test_drift_and_image_reports_of_an_application_being_removed_change_nothing(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    host = Host(stack, api, git_repo, unique, self_heal=True, image_updates="deploy")
    deleting = threading.Thread(target=lambda: api.delete(f"/applications/{host.id}"))
    deleting.start()
    wait_for(lambda: get_application(api, host.id)["removing"], what="the delete accepted")

    host.drift("web missing")  # the agent saw the teardown begin

    assert host.images(_moved())["action"] == "ignored"
    assert host.events("drift") == []
    assert get_application(api, host.id)["last_sync_error"] is None
    removal = host.scripted.take_removal()  # the undeploy, and no heal or image deploy behind it
    host.scripted.answer(
        removal,
        {"request_id": removal.request.request_id, "application_id": host.id, "success": True},
    )
    deleting.join(timeout=60)
    assert host.queue_is_empty()


# --- image updates -------------------------------------------------------------------------------


def _moved(service: str = "web") -> list[dict[str, str]]:
    return [{"service": service, "image": IMAGE, "running_digest": OLD, "registry_digest": NEW}]


def test_image_report_notify_tells_targets_and_deploys_nothing(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    unique: str,
    receiver: JsonReceiver,
    target: str,
) -> None:
    host = Host(stack, api, git_repo, unique, image_updates="notify", notification_ids=[target])

    assert host.images(_moved()) == {
        "action": "notified",
        "request_id": None,
        "retry_after_seconds": None,
    }

    [event] = host.events("image_update")
    assert (event["trigger"], event["status"]) == ("image_update", "succeeded")
    assert event["message"] == (
        f"new image digests: web: {IMAGE} sha256:a1a1a1a1a1a1 → sha256:b2b2b2b2b2b2"
    )
    [title] = wait_for(lambda: _titled(receiver, "new image"), what="the notification")
    assert title.endswith("(image update)")
    assert host.queue_is_empty()
    assert get_application(api, host.id)["sync_status"] == "synced"


def test_image_report_deploy_redeploys_once_with_pulls_then_debounces(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    host = Host(stack, api, git_repo, unique, image_updates="deploy")

    answer = host.images(_moved())

    assert answer["action"] == "deployed"
    taken = host.scripted.take()
    assert taken.request.request_id == answer["request_id"]
    assert taken.request.pull  # fetched even where the host has the old image
    running = next(e for e in host.events("deployment") if e["status"] == "running")
    assert running["trigger"] == "image_update"
    assert running["message"].endswith(
        f"(image update: web: {IMAGE} sha256:a1a1a1a1a1a1 → sha256:b2b2b2b2b2b2)"
    )
    again = host.images(_moved("worker"))
    assert again["action"] == "debounced"
    assert 0 < again["retry_after_seconds"] <= 60
    host.scripted.succeed(taken)
    wait_for_status(api, host.id, "synced")
    assert host.images(_moved("worker"))["action"] == "debounced"  # still within the minute
    assert host.queue_is_empty()


def test_image_report_error_recorded_and_off_ignored(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    host = Host(stack, api, git_repo, unique, image_updates="deploy")

    answer = host.images([], error=f"{IMAGE}: registry 127.0.0.1:5000 answered 429")

    assert answer["action"] == "recorded"
    [event] = host.events("image_update")
    assert event["status"] == "failed"
    assert event["error"] == f"image check failed: {IMAGE}: registry 127.0.0.1:5000 answered 429"
    api.patch(f"/applications/{host.id}", json={"image_updates": "off"})
    assert host.images(_moved())["action"] == "ignored"
    assert len(host.events("image_update")) == 1
    assert host.queue_is_empty()


# --- the image webhook ---------------------------------------------------------------------------


def _hints(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found = []
    for message in sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", []):
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        found.append(json.loads(message["Body"]))
    return found


DOCKER_HUB = {
    "push_data": {"pushed_at": 1767225600, "pusher": "octo", "tag": "1.4"},
    "repository": {"name": "shop", "namespace": "octo", "repo_name": "octo/shop"},
}


def test_image_webhook_token_puts_a_check_hint_on_the_agents_queue(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    host = Host(stack, api, git_repo, unique)
    issued = api.post(f"/agents/{host.application['agent_id']}/image-webhook").json()
    url, token = issued["webhook_url"], issued["token"]
    assert url == f"{stack.api_url}/api/v1/webhooks/images/{token}"

    idle = httpx.post(url, json=DOCKER_HUB)
    assert idle.status_code == 200, idle.text
    assert "no application" in idle.json()["ignored"]
    api.patch(f"/applications/{host.id}", json={"image_updates": "notify"})

    accepted = httpx.post(url, json=DOCKER_HUB)

    assert accepted.status_code == 202, accepted.text
    assert _hints(host.scripted.queue_url) == [
        {"kind": "check_images", "images": ["docker.io/octo/shop:1.4"]}
    ]
    body = json.dumps(
        {
            "action": "published",
            "package": {
                "name": "shop",
                "namespace": "octo-org",
                "package_type": "CONTAINER",
                "package_version": {"package_url": "ghcr.io/octo-org/shop:main"},
            },
        }
    ).encode()
    signature = "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
    github = {"X-GitHub-Event": "package", "Content-Type": "application/json"}
    assert httpx.post(url, content=body, headers=github).status_code == 401  # unsigned
    signed = httpx.post(url, content=body, headers={**github, "X-Hub-Signature-256": signature})
    assert signed.status_code == 202, signed.text
    assert _hints(host.scripted.queue_url)[0]["images"] == ["ghcr.io/octo-org/shop:main"]

    wrong = f"{stack.api_url}/api/v1/webhooks/images/{token[:-2]}xx"
    assert httpx.post(wrong, json=DOCKER_HUB).status_code == 401
    api.post(f"/agents/{host.application['agent_id']}/image-webhook")  # a new one replaces it
    assert httpx.post(url, json=DOCKER_HUB).status_code == 401
    assert _hints(host.scripted.queue_url) == []


def test_applications_settings_shown_and_listed_for_their_agent(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    host = Host(stack, api, git_repo, unique, image_updates="deploy", self_heal=True)
    shown = get_application(api, host.id)
    assert (shown["image_updates"], shown["self_heal"]) == ("deploy", True)
    assert (
        api.patch(f"/applications/{host.id}", json={"image_updates": "sometimes"}).status_code
        == 422
    )

    listed = host.agent.get("/applications")

    assert listed.status_code == 200, listed.text
    assert listed.json() == [
        {
            "application_id": host.id,
            "project_name": shown["project_name"],
            "image_updates": "deploy",
        }
    ]


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_settings_shown_and_watch_names_drift_and_self_heal_live(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str, ferry: Ferry
) -> None:
    host = Host(stack, api, git_repo, unique)

    ok(ferry("app", "set", host.id, "--image-updates", "deploy", "--self-heal"))

    shown = ok(ferry("app", "show", host.id))
    assert re.search(r"image updates\s+deploy", shown), shown
    assert re.search(r"self-heal\s+on", shown), shown
    watching = Watching(stack, "--timeout", "120")
    host.drift("web stopped")
    said = wait_for(
        lambda: (
            [line for line in watching.out if host.id in line and "application." in line]
            if any("application.self_heal" in line for line in watching.out)
            else None
        ),
        what="watch to show the drift and the heal",
    )
    watching.process.send_signal(signal.SIGINT)
    assert watching.finish() == 0, watching.err
    assert any("application.drift" in line and "web stopped" in line for line in said), said
    assert any("redeploying: healing web stopped" in line for line in said), said
    host.scripted.succeed(host.scripted.take())

    ok(ferry("app", "set", host.id, "--no-self-heal", "--image-updates", "off"))
    shown = ok(ferry("app", "show", host.id))
    assert re.search(r"self-heal\s+off", shown), shown
    issued = ok(ferry("agent", "image-webhook", host.application["agent_id"], "--yes"))
    assert f"{stack.api_url}/api/v1/webhooks/images/{host.application['agent_id']}." in issued
