"""Every deploy outcome with the real agent, real Docker and the deploy state machine executed by
moto: DESIGN.md's statuses, exactly one change on the live feed per status write, the matching
notification at a local JSON receiver (an apprise `json://` target), nothing left `syncing`.

Status writes are counted by spying on the one chokepoint's row write (`ferry.deploy.status` →
`update_application`): the in-process Lambda handlers run in this process, so every write any of
them makes passes the spy, which only counts and calls through.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import ferry.deploy.status
from ferry.aws.executions import describe_deploy
from ferry.local.agent_process import AgentProcess
from ferry.local.stack import LocalStack
from ferry.store.applications import get_application
from ferry.store.changes import changes_after, latest_change
from tests.conftest import TEST_HEARTBEAT_SECONDS
from tests.e2e.conftest import remove_deployed_projects
from tests.e2e.test_agent import ENDLESS_UP, Agent, _compose_processes, agent_process
from tests.helpers import (
    JsonReceiver,
    commit,
    compose,
    create_repository,
    events,
    finished_deployments,
    wait_for,
)

pytestmark = pytest.mark.docker

IMAGE = "ferry-local/busybox:latest"


class StatusWrites:
    """Counts the chokepoint's row writes per application (attempted ones, failed or not)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        # The chokepoint writes the row through one of three store calls: the plain write, the
        # one that also numbers the history events written with it, or a sync batch's writes of
        # many applications (each write counted for its application).
        for name in ("update_application", "update_application_numbering_event"):
            monkeypatch.setattr(
                ferry.deploy.status, name, self._counted(getattr(ferry.deploy.status, name))
            )
        batched = "update_applications_numbering_events"
        monkeypatch.setattr(
            ferry.deploy.status, batched, self._counted_each(getattr(ferry.deploy.status, batched))
        )

    def _counted(self, write: Any) -> Any:
        def counted(application_id: str, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.counts[application_id] += 1
            return write(application_id, *args, **kwargs)

        return counted

    def _counted_each(self, write: Any) -> Any:
        def counted(writes: list[Any]) -> Any:
            with self._lock:
                self.counts.update(item.application_id for item in writes)
            return write(writes)

        return counted


@pytest.fixture
def status_writes(monkeypatch: pytest.MonkeyPatch) -> StatusWrites:
    return StatusWrites(monkeypatch)


@pytest.fixture
def applications() -> Iterator[set[str]]:
    ids: set[str] = set()
    yield ids
    remove_deployed_projects(ids)


def _status_changes(application_id: str, after: int) -> int:
    path = f"/api/v1/applications/{application_id}"
    seen, cursor = 0, after
    while page := changes_after(cursor):
        seen += sum(1 for c in page if c.kind == "application.status" and c.path == path)
        cursor = page[-1].seq
    return seen


def _settled(api: httpx.Client, application_id: str, timeout: float) -> dict[str, Any]:
    """The application once its deploy ended: terminal status, its deployment event finished."""

    def done() -> dict[str, Any] | None:
        application = dict(api.get(f"/applications/{application_id}").json())
        if application["sync_status"] in ("unknown", "syncing"):
            return None
        return application

    application = wait_for(done, timeout=timeout, what=f"{application_id} to settle")
    finished_deployments(api, application_id)
    return application


Deploy = Callable[[str, str], dict[str, Any]]


@pytest.fixture
def deploy(
    api: httpx.Client, git_repo: Path, unique: str, receiver: JsonReceiver, applications: set[str]
) -> Deploy:
    """Create an application for `compose_file` on `agent_id`, notifying `receiver`."""
    target = api.post("/notifications", json={"name": f"n-{unique}", "url": receiver.url})
    assert target.status_code == 201, target.text

    def create(compose_file: str, agent_id: str) -> dict[str, Any]:
        head = commit(git_repo, "app/compose.yaml", compose_file)
        repository = create_repository(api, git_repo)
        response = api.post(
            "/applications",
            json={
                "name": f"outcome {unique}",
                "repository_id": repository["id"],
                "agent_id": agent_id,
                "path": "app/compose.yaml",
                "notification_ids": [target.json()["id"]],
            },
        )
        assert response.status_code == 201, response.text
        application = dict(response.json())
        applications.add(application["id"])
        application["head"] = head
        return application

    return create


def _assert_one_change_per_write(
    status_writes: StatusWrites, application_id: str, before: int
) -> None:
    # The last announcement follows its write by a moment.
    writes = status_writes.counts[application_id]
    assert writes >= 2  # in progress, then the outcome
    wait_for(
        lambda: _status_changes(application_id, before) >= writes,
        timeout=10,
        what="every status write announced",
    )
    time.sleep(0.5)
    assert _status_changes(application_id, before) == status_writes.counts[application_id]


def _note(receiver: JsonReceiver, words: str) -> dict[str, Any]:
    return wait_for(
        lambda: next((b for b in receiver.received if words in str(b.get("title"))), None),
        timeout=20,
        what=f"a notification saying {words!r}",
    )


OUTCOMES = {
    "success": (
        compose(greeting="fine"),
        ("synced", "healthy"),
        "deployed",
        None,
    ),
    "policy_violation": (
        f"""services:
  web:
    image: {IMAGE}
    command: ["sleep", "600"]
    privileged: true
    cap_add: [sys_admin]
""",
        ("out_of_sync", "unhealthy"),
        "failed to deploy",
        "security policy",
    ),
    "broken_image": (
        compose(image="ferry-local/does-not-exist:1"),
        ("out_of_sync", "unhealthy"),
        "failed to deploy",
        "does-not-exist",
    ),
}


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_deploy_outcome_statuses_one_change_per_write_and_notification(
    stack: LocalStack,
    api: httpx.Client,
    local_agent: AgentProcess,
    deploy: Deploy,
    receiver: JsonReceiver,
    status_writes: StatusWrites,
    outcome: str,
) -> None:
    assert stack.state is not None
    compose_file, statuses, title, error = OUTCOMES[outcome]
    before = latest_change()

    application = deploy(compose_file, stack.state.agent_id)

    done = _settled(api, application["id"], timeout=90)
    assert (done["sync_status"], done["health_status"]) == statuses
    assert done["target_commit"] == application["head"]
    if error is None:
        assert done["commit"] == application["head"]  # only a successful deploy moves it
        assert done["last_sync_error"] is None and done["last_synced_at"]
        # The agent's answer, as the execution received it: container states and digests.
        request_id = get_application(application["id"]).current_request_id
        assert request_id is not None
        # The status is written a few states before the execution ends (Notify, Done).
        wait_for(
            lambda: describe_deploy(request_id).status != "RUNNING",
            timeout=20,
            what="the deploy execution to end",
        )
        output = describe_deploy(request_id).output or {}
        [container] = output["result"]["containers"]
        assert (container["service"], container["state"]) == ("web", "running")
        assert "sha256:" in output["result"]["image_digests"][IMAGE]
        assert container["image_digest"] == output["result"]["image_digests"][IMAGE]
    else:
        assert error in done["last_sync_error"]
    note = _note(receiver, title)
    assert application["name"] in note["title"]
    if error is not None:
        assert error in note["message"]
    _assert_one_change_per_write(status_writes, application["id"], before)
    assert [e["status"] for e in events(api, application["id"]) if e["status"] == "running"] == []


def test_deploy_agent_killed_ends_without_result_notified_one_change_per_write(
    stack: LocalStack,
    api: httpx.Client,
    deploy: Deploy,
    receiver: JsonReceiver,
    status_writes: StatusWrites,
    tmp_path: Path,
) -> None:
    before = latest_change()
    process: Agent
    with agent_process(stack, api, tmp_path) as process:
        application = deploy(ENDLESS_UP, process.id)
        project = application["project_name"]
        wait_for(lambda: _compose_processes(project), timeout=60, what="compose up to run")

        process.kill()  # mid-deploy: the heartbeats stop

        done = _settled(api, application["id"], timeout=TEST_HEARTBEAT_SECONDS + 20)
    assert done["sync_status"] == "out_of_sync"
    assert done["health_status"] == "unknown"  # a transport error leaves health unchanged
    assert "agent stopped responding" in done["last_sync_error"]
    note = _note(receiver, "without a result")
    assert "agent stopped responding" in note["message"]
    _assert_one_change_per_write(status_writes, application["id"], before)
