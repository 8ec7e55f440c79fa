"""The control plane's CloudWatch metrics (Powertools EMF, namespace Ferry, dimension
service=ferry), as the functions print them: one flush per invocation (per request for the API,
which uvicorn serves locally)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferry.local.stack import LocalStack
from tests.helpers import (
    ScriptedAgent,
    agent_queue_url,
    commit,
    compose,
    create_agent,
    create_repository,
    github_push_headers,
    push_webhook,
    wait_for,
    wait_for_idle_sync,
    wait_for_status,
)


class Emitted:
    """EMF lines printed so far (the functions and the API print them from their own threads,
    which capsys captures too)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.lines: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        for line in self.capsys.readouterr().out.splitlines():
            if line.startswith("{") and '"_aws"' in line:
                self.lines.append(json.loads(line))
        return self.lines

    def values(self, name: str) -> list[float]:
        """Every value of metric `name` printed so far, checked to be Ferry's and service=ferry."""
        found: list[float] = []
        for line in self.read():
            for directive in line["_aws"]["CloudWatchMetrics"]:
                if name not in {m["Name"] for m in directive["Metrics"]}:
                    continue
                assert directive["Namespace"] == "Ferry"
                assert ["service"] in directive["Dimensions"]
                assert line["service"] == "ferry"
                value = line[name]
                found.extend(value if isinstance(value, list) else [value])
        return found

    def unit(self, name: str) -> str:
        for line in self.read():
            for directive in line["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    if metric["Name"] == name:
                        return str(metric["Unit"])
        raise AssertionError(f"{name} was not emitted")

    def wait(self, name: str, count: int = 1) -> list[float]:
        def enough() -> list[float] | None:
            values = self.values(name)
            return values if len(values) >= count else None

        return wait_for(enough, what=f"{count} {name} metric(s)")


@pytest.fixture
def emitted(capsys: pytest.CaptureFixture[str]) -> Emitted:
    return Emitted(capsys)


def test_deliveries_counted_by_outcome(
    stack: LocalStack, api: httpx.Client, git_repo: Path, emitted: Emitted
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    url = f"{stack.api_url}/api/v1/webhooks/repositories/{repository['id']}"

    accepted = push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    refused = httpx.post(url, headers={"Authorization": "Bearer wrong"}, json={})
    ping = b'{"zen": "hi"}'
    ignored = httpx.post(
        url, content=ping, headers=github_push_headers(repository["webhook_secret"], ping, "ping")
    )

    assert (accepted.status_code, refused.status_code, ignored.status_code) == (202, 401, 200)
    assert emitted.wait("DeliveriesAccepted") == [1.0]
    assert emitted.wait("DeliveriesRefused") == [1.0]
    assert emitted.wait("DeliveriesIgnored") == [1.0]
    assert emitted.unit("DeliveriesAccepted") == "Count"
    wait_for_idle_sync(repository["id"])


def test_deploy_outcomes_and_sync_duration_emitted(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str, emitted: Emitted
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    agent = create_agent(api, f"metrics-{unique}")
    application = api.post(
        "/applications",
        json={
            "name": f"metrics-{unique}",
            "repository_id": repository["id"],
            "agent_id": agent["id"],
            "path": "app/compose.yaml",
        },
    ).json()
    scripted = ScriptedAgent(agent_queue_url(agent["id"]))

    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced")
    assert emitted.wait("DeploysSucceeded")
    durations = emitted.wait("SyncDuration")
    assert all(duration > 0 for duration in durations)
    assert emitted.unit("SyncDuration") == "Milliseconds"

    commit(git_repo, "app/compose.yaml", compose(greeting="broken"))
    push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    scripted.fail(scripted.take(), "compose up failed")
    wait_for_status(api, application["id"], "out_of_sync")
    assert emitted.wait("DeploysFailed")

    wait_for_idle_sync(repository["id"])
    commit(git_repo, "app/compose.yaml", compose(greeting="cancelled"))
    push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    scripted.take()
    assert api.post(f"/applications/{application['id']}/cancel").status_code == 200
    assert emitted.wait("DeploysWithoutResult")
