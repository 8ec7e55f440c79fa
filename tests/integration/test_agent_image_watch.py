"""The agent's image watcher against a real Docker daemon and a real registry: what it reports
when a running tag is pushed again, how it asks again when the control plane holds a redeploy
back, that it says a moved digest once, and that images no registry knows cost no request. The
control plane is the one edge stood in for (it records reports and answers as told)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from ferry.domain.messages import AgentApplication, ImageReport, ImageReportAnswer
from ferry.domain.models import ImageUpdates
from ferry_agent.image_watch import ImageWatcher
from ferry_agent.registry import DockerCredentials, RegistryClient
from tests.helpers import wait_for
from tests.registry import PushedImages, Registry, start_registry

pytestmark = pytest.mark.docker


class ControlPlane:
    def __init__(self, application_id: str, answers: list[ImageReportAnswer]) -> None:
        self.application_id = application_id
        self.answers = answers
        self.reports: list[ImageReport] = []

    def applications(self) -> list[AgentApplication]:
        return [
            AgentApplication(
                application_id=self.application_id,
                project_name="watched",
                image_updates=ImageUpdates.DEPLOY,
            )
        ]

    def report_images(self, report: ImageReport) -> ImageReportAnswer:
        self.reports.append(report)
        return self.answers.pop(0) if self.answers else ImageReportAnswer(action="deployed")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    started = start_registry(tmp_path / "registry")
    yield started
    started.stop()


@pytest.fixture
def pushed() -> Iterator[PushedImages]:
    images = PushedImages()
    yield images
    images.remove()


@pytest.fixture
def containers() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for container in started:
        container.remove(force=True)


def _run(containers: list[Any], image: str, application_id: str) -> None:
    containers.append(
        docker.from_env().containers.run(
            image,
            ["sleep", "600"],
            detach=True,
            labels={"ferry.application-id": application_id, "com.docker.compose.service": "web"},
            stop_signal="SIGKILL",
        )
    )


def _watcher(control_plane: ControlPlane, tmp_path: Path) -> ImageWatcher:
    return ImageWatcher(
        docker.from_env,
        control_plane,
        RegistryClient(DockerCredentials(tmp_path / "no-docker-config")),
        interval_seconds=3600,
    )


def test_image_watcher_moved_tag_reported_held_back_asked_again_then_said_once(
    registry: Registry, pushed: PushedImages, containers: list[Any], tmp_path: Path
) -> None:
    reference = f"{registry.host}/watched-{secrets.token_hex(3)}:latest"
    first = pushed.push(reference)
    application_id = f"app_{secrets.token_hex(8)}"
    _run(containers, reference, application_id)
    second = pushed.push(reference)
    control_plane = ControlPlane(
        application_id, [ImageReportAnswer(action="debounced", retry_after_seconds=1)]
    )
    watcher = _watcher(control_plane, tmp_path)
    watcher.start()
    try:
        watcher.hint([reference])  # the image webhook named it

        wait_for(lambda: len(control_plane.reports) == 2, timeout=15, what="the report again")
    finally:
        watcher.stop()
    [change] = control_plane.reports[0].changes
    assert (change.service, change.image) == ("web", reference)
    assert (change.running_digest, change.registry_digest) == (first, second)
    assert control_plane.reports[1].changes == control_plane.reports[0].changes
    watcher.check()  # the same digests again: nothing new to say
    assert len(control_plane.reports) == 2


def test_image_watcher_local_only_image_costs_no_request(
    containers: list[Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    application_id = f"app_{secrets.token_hex(8)}"
    _run(containers, "ferry-local/busybox:latest", application_id)
    control_plane = ControlPlane(application_id, [])

    with caplog.at_level(logging.INFO, logger="ferry_agent"):
        _watcher(control_plane, tmp_path).check()

    assert control_plane.reports == []
    assert "image check done: 0 image(s) of 1 application(s)" in caplog.text


def test_image_watcher_unreachable_registry_said_once_per_kind(
    registry: Registry, pushed: PushedImages, containers: list[Any], tmp_path: Path
) -> None:
    reference = f"{registry.host}/gone-{secrets.token_hex(3)}:latest"
    pushed.push(reference)
    application_id = f"app_{secrets.token_hex(8)}"
    _run(containers, reference, application_id)
    control_plane = ControlPlane(application_id, [])
    watcher = _watcher(control_plane, tmp_path)
    registry.stop()

    watcher.check()
    watcher.check()

    [report] = control_plane.reports
    assert report.changes == []
    assert report.error is not None and "unreachable" in report.error
    registry.start()
    watcher.check()  # reachable again, and nothing moved
    registry.stop()
    watcher.check()  # the same failure, back after it went away: said again
    assert len(control_plane.reports) == 2
