"""The host stays at the desired state, end to end: the real agent, a real Docker daemon, the
local stack, and a real registry (Debian's docker-registry on a loopback port).

- `docker stop` is drift: recorded with what differs, the container left as it is; with
  self-heal it runs again, until the flap guard stops healing and says so.
- A tag pushed again: `deploy` redeploys the new digest (the image webhook asks at once),
  `notify` tells the targets and deploys nothing, and a registry answering 401 or 429 is an
  error in the history while the agent carries on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from ferry.local.stack import LocalStack
from tests.e2e.conftest import application_containers, remove_deployed_projects
from tests.e2e.test_agent import Agent, agent_process
from tests.helpers import (
    JsonReceiver,
    commit,
    compose,
    create_repository,
    events,
    get_application,
    wait_for,
    wait_for_status,
)
from tests.registry import PushedImages, Registry, ScriptedRegistry, start_registry

pytestmark = pytest.mark.docker

# Events are looked at after the health debounce (2 s); the periodic look is the backstop.
DRIFT_SETTINGS = {"FERRY_DRIFT_CHECK_SECONDS": "5"}


@pytest.fixture
def applications() -> Iterator[set[str]]:
    ids: set[str] = set()
    yield ids
    remove_deployed_projects(ids)


@pytest.fixture
def pushed() -> Iterator[PushedImages]:
    images = PushedImages()
    yield images
    images.remove()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    started = start_registry(tmp_path / "registry")
    yield started
    started.stop()


@pytest.fixture
def target(api: httpx.Client, receiver: JsonReceiver, unique: str) -> str:
    created = api.post("/notifications", json={"name": f"n-{unique}", "url": receiver.url})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


NewApp = Callable[..., dict[str, Any]]


@pytest.fixture
def new_app(api: httpx.Client, git_repo: Path, unique: str, applications: set[str]) -> NewApp:
    """Commit `compose_file` and create an application for it on `agent` with `settings`;
    returns it once its first deploy is synced."""

    def create(compose_file: str, agent: Agent, **settings: Any) -> dict[str, Any]:
        head = commit(git_repo, "app/compose.yaml", compose_file)
        repository = create_repository(api, git_repo)
        response = api.post(
            "/applications",
            json={
                "name": f"desired {unique}",
                "repository_id": repository["id"],
                "agent_id": agent.id,
                "path": "app/compose.yaml",
                **settings,
            },
        )
        assert response.status_code == 201, response.text
        application = dict(response.json())
        applications.add(application["id"])
        wait_for_status(api, application["id"], "synced", commit=head, timeout=90)
        return application

    return create


def _web(application_id: str) -> Any:
    [container] = application_containers(application_id)
    return container


def _running(application_id: str) -> bool:
    return bool(application_containers(application_id, running_only=True))


def _stays(probe: Callable[[], bool], seconds: float, what: str) -> None:
    """`probe` holds for the whole window (what must NOT happen is given time to happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert probe(), f"no longer true: {what}"
        time.sleep(0.5)


def _events(api: httpx.Client, application_id: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in events(api, application_id) if e["type"] == kind]


def _deployments(api: httpx.Client, application_id: str, trigger: str) -> list[dict[str, Any]]:
    return [
        e
        for e in _events(api, application_id, "deployment")
        if e["trigger"] == trigger and e["status"] == "succeeded"
    ]


# --- drift and self-heal -----------------------------------------------------------------------


def test_drift_docker_stop_recorded_container_stays_stopped_until_started(
    stack: LocalStack, api: httpx.Client, tmp_path: Path, new_app: NewApp
) -> None:
    with agent_process(stack, api, tmp_path, **DRIFT_SETTINGS) as agent:
        application = new_app(compose(greeting="drift"), agent)
        app_id = application["id"]
        container = _web(app_id)

        container.stop(timeout=1)

        drifted = wait_for(
            lambda: (
                (found := get_application(api, app_id))["last_sync_error"] == "drift: web stopped"
                and found
            ),
            timeout=60,
            what="the drift to be recorded",
        )
        assert drifted["sync_status"] == "out_of_sync"
        [event] = _events(api, app_id, "drift")
        assert (event["trigger"], event["status"], event["error"]) == (
            "drift",
            "failed",
            "web stopped",
        )
        _stays(lambda: not _running(app_id), 5, "the container stays stopped")
        assert len(_events(api, app_id, "deployment")) == 1  # nothing redeployed it

        container.start()

        wait_for_status(api, app_id, "synced", timeout=60)
        assert _events(api, app_id, "drift")[0]["message"] == "back at the deployed state"


def test_drift_self_heal_runs_it_again_until_the_flap_guard_stops(
    stack: LocalStack,
    api: httpx.Client,
    tmp_path: Path,
    new_app: NewApp,
    receiver: JsonReceiver,
    target: str,
) -> None:
    with agent_process(stack, api, tmp_path, **DRIFT_SETTINGS) as agent:
        application = new_app(
            compose(greeting="heal"), agent, self_heal=True, notification_ids=[target]
        )
        app_id = application["id"]

        for heal in range(1, 4):
            _web(app_id).stop(timeout=1)
            wait_for(
                lambda: len(_deployments(api, app_id, "self_heal")) == heal,  # noqa: B023 - waited for here
                timeout=60,
                what=f"self-heal {heal}",
            )
            wait_for(lambda: _running(app_id), timeout=30, what=f"web running after heal {heal}")
            wait_for_status(api, app_id, "synced", timeout=30)

        _web(app_id).stop(timeout=1)  # the fourth stop within ten minutes

        stopped = wait_for(
            lambda: next(
                (e for e in _events(api, app_id, "drift") if e["trigger"] == "self_heal"), None
            ),
            timeout=60,
            what="the flap guard to stop healing",
        )
        assert "self-heal stopped: healed 3 times within 10 minutes" in stopped["error"]
        wait_for(
            lambda: any("self-heal stopped" in title for title in receiver.titles()),
            what="the guard's notification",
        )
        _stays(lambda: not _running(app_id), 5, "the container stays stopped")
        found = get_application(api, app_id)
        assert (found["sync_status"], found["last_sync_error"]) == (
            "out_of_sync",
            "drift: web stopped",
        )

        _web(app_id).start()  # the fifth: started by hand and stopped again
        wait_for_status(api, app_id, "synced", timeout=60)
        _web(app_id).stop(timeout=1)

        wait_for_status(api, app_id, "out_of_sync", timeout=60)
        _stays(lambda: not _running(app_id), 5, "still not healed")
        assert len(_deployments(api, app_id, "self_heal")) == 3
        assert sum("self-heal stopped" in title for title in receiver.titles()) == 1


# --- image updates -------------------------------------------------------------------------------


def _pushed_then_dropped(pushed: PushedImages, reference: str) -> str:
    """Push a new build as `reference` and drop it from this host, so the agent has to pull it
    from the registry as any other host would. Returns its digest."""
    digest = pushed.push(reference)
    repository = reference.rsplit(":", 1)[0]
    pushed.references.add(f"{repository}@{digest}")
    docker.from_env().images.remove(reference)
    return digest


def _runs_digest(application_id: str, digest: str) -> bool:
    client = docker.from_env()
    containers = application_containers(application_id, running_only=True)
    return any(
        any(d.endswith(digest) for d in client.images.get(c.attrs["Image"]).attrs["RepoDigests"])
        for c in containers
    )


def test_image_update_deploy_new_digest_redeployed_at_once_on_the_webhook(
    stack: LocalStack,
    api: httpx.Client,
    tmp_path: Path,
    unique: str,
    registry: Registry,
    pushed: PushedImages,
    new_app: NewApp,
) -> None:
    reference = f"{registry.host}/shop-{unique}:latest"
    first = _pushed_then_dropped(pushed, reference)
    # The periodic check is far away: only the webhook can make this quick.
    with agent_process(stack, api, tmp_path, FERRY_IMAGE_CHECK_SECONDS="3600") as agent:
        application = new_app(compose(image=reference), agent, image_updates="deploy")
        app_id = application["id"]
        assert _runs_digest(app_id, first)
        hook = api.post(f"/agents/{agent.id}/image-webhook").json()["webhook_url"]
        second = _pushed_then_dropped(pushed, reference)

        answer = httpx.post(hook, json={"image": reference, "digest": second}, timeout=10)

        assert answer.status_code == 202, answer.text
        [deployed] = wait_for(
            lambda: _deployments(api, app_id, "image_update"),
            timeout=60,
            what="the image update's deploy",
        )
        assert deployed["message"].endswith(
            f"(image update: web: {reference} {first[:19]} → {second[:19]})"
        )
        wait_for(lambda: _runs_digest(app_id, second), timeout=30, what="the new digest to run")
        wait_for_status(api, app_id, "synced", timeout=30)


def test_image_update_notify_tells_targets_and_keeps_the_running_image(
    stack: LocalStack,
    api: httpx.Client,
    tmp_path: Path,
    unique: str,
    registry: Registry,
    pushed: PushedImages,
    new_app: NewApp,
    receiver: JsonReceiver,
    target: str,
) -> None:
    reference = f"{registry.host}/shop-{unique}:latest"
    first = _pushed_then_dropped(pushed, reference)
    with agent_process(stack, api, tmp_path, FERRY_IMAGE_CHECK_SECONDS="2") as agent:
        application = new_app(
            compose(image=reference), agent, image_updates="notify", notification_ids=[target]
        )
        app_id = application["id"]

        second = _pushed_then_dropped(pushed, reference)

        [event] = wait_for(
            lambda: _events(api, app_id, "image_update"), timeout=60, what="the image update"
        )
        assert event["message"] == (
            f"new image digests: web: {reference} {first[:19]} → {second[:19]}"
        )
        wait_for(
            lambda: any("new image" in title for title in receiver.titles()),
            what="the notification",
        )
        assert len(_events(api, app_id, "deployment")) == 1
        assert _runs_digest(app_id, first)
        # Told once: the checks after it see the same digests and say nothing more.
        checks = _image_checks(agent)
        wait_for(lambda: _image_checks(agent) >= checks + 2, timeout=30, what="two more checks")
        assert len(_events(api, app_id, "image_update")) == 1


def _image_checks(agent: Agent) -> int:
    return agent.log.read_text().count("image check done")


def test_image_check_registry_answering_401_then_429_recorded_agent_carries_on(
    stack: LocalStack,
    api: httpx.Client,
    tmp_path: Path,
    unique: str,
    registry: Registry,
    pushed: PushedImages,
    new_app: NewApp,
) -> None:
    reference = f"{registry.host}/shop-{unique}:latest"
    _pushed_then_dropped(pushed, reference)
    with agent_process(stack, api, tmp_path, FERRY_IMAGE_CHECK_SECONDS="2") as agent:
        application = new_app(compose(image=reference), agent, image_updates="deploy")
        app_id = application["id"]
        registry.stop()
        impostor = ScriptedRegistry(registry.port)  # the same address, refusing now
        try:
            impostor.answer(401, {"WWW-Authenticate": 'Basic realm="shop"'})
            refused = wait_for(
                lambda: _events(api, app_id, "image_update"), timeout=60, what="the 401"
            )
            assert refused[0]["status"] == "failed"
            assert "answered 401" in refused[0]["error"]

            impostor.answer(429, {"Retry-After": "1"})
            limited = wait_for(
                lambda: [e for e in _events(api, app_id, "image_update") if "429" in e["error"]],
                timeout=60,
                what="the 429",
            )
            assert "Too Many Requests" in limited[0]["error"]
        finally:
            impostor.close()
        assert agent.process is not None and agent.process.poll() is None  # still running
        assert len(_events(api, app_id, "deployment")) == 1
        assert get_application(api, app_id)["sync_status"] == "synced"
