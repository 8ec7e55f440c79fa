"""The agent's drift watcher against a real Docker daemon: containers labelled as compose labels
them, the deployed record written beside the project, and what the watcher reports when they are
stopped, removed or recreated by hand, before and after a job of the agent itself. The control
plane is the one edge stood in for (it records the reports)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from ferry.domain.messages import DriftReport
from ferry.domain.models import HealthStatus
from ferry_agent.control_plane import ReportRefused
from ferry_agent.deployed import deployed_state, observe, write_deployed
from ferry_agent.drift import DriftWatcher

pytestmark = pytest.mark.docker

IMAGE = "ferry-local/busybox:latest"


class Reports:
    def __init__(self) -> None:
        self.seen: list[list[str]] = []
        self.refuse = False

    def report_drift(self, report: DriftReport) -> None:
        if self.refuse:
            raise ReportRefused("not this agent's")
        self.seen.append(report.differences)


class Project:
    """A compose-labelled project of real containers and its deployed record."""

    def __init__(self, deployments: Path) -> None:
        self.client = docker.from_env()
        self.name = f"drift-{secrets.token_hex(3)}"
        self.application_id = f"app_{secrets.token_hex(8)}"
        self.folder = deployments / self.name
        self.folder.mkdir(parents=True)
        self.containers: list[Any] = []

    def run(self, service: str, config_hash: str, application_id: str | None = None) -> Any:
        container = self.client.containers.run(
            IMAGE,
            ["sleep", "600"],
            detach=True,
            name=f"{self.name}-{service}-{len(self.containers)}",
            labels={
                "com.docker.compose.project": self.name,
                "com.docker.compose.service": service,
                "com.docker.compose.config-hash": config_hash,
                "ferry.application-id": application_id or self.application_id,
            },
            stop_signal="SIGKILL",
        )
        self.containers.append(container)
        return container

    def record(self) -> None:
        listed = self.client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={self.name}"}
        )
        observed = [found for c in listed if (found := observe(c)) is not None]
        write_deployed(
            self.folder, deployed_state(self.application_id, self.name, "c" * 40, observed)
        )

    def remove(self) -> None:
        for container in self.containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    made = Project(tmp_path / "deployments")
    yield made
    made.remove()


def test_drift_watcher_reports_each_change_once_and_anew_after_a_job(
    project: Project, tmp_path: Path
) -> None:
    web = project.run("web", "hash-1")
    project.run("worker", "hash-w")
    project.record()
    reports = Reports()
    watcher = DriftWatcher(docker.from_env, reports, tmp_path / "deployments")

    watcher.check()  # the first look is always said, so a restarted agent catches up
    web.stop()
    watcher.check()
    watcher.check()

    assert reports.seen == [[], ["web stopped"]]

    watcher.request_started(project.application_id)
    watcher.check()  # the agent's own job decides what runs meanwhile
    assert len(reports.seen) == 2
    watcher.request_finished(project.application_id, HealthStatus.UNHEALTHY, removed=False)
    watcher.check()  # the job's answer said "synced": the stop is news again
    assert reports.seen[-1] == ["web stopped"]

    web.start()
    watcher.check()
    web.remove(force=True)
    watcher.check()
    project.run("web", "hash-by-hand")
    watcher.check()

    assert reports.seen[3:] == [[], ["web missing"], ["web recreated by hand"]]


def test_drift_watcher_refused_application_not_reported_again(
    project: Project, tmp_path: Path
) -> None:
    web = project.run("web", "hash-1")
    project.record()
    reports = Reports()
    reports.refuse = True
    watcher = DriftWatcher(docker.from_env, reports, tmp_path / "deployments")
    watcher.check()
    reports.refuse = False

    web.stop()
    watcher.check()

    assert reports.seen == []


def test_drift_watcher_same_project_name_of_another_application_ignored(
    project: Project, tmp_path: Path
) -> None:
    """Another agent on the same daemon may run a project of the same name (two `hello`s)."""
    project.run("web", "hash-1")
    project.record()
    stranger = project.run("web", "hash-theirs", application_id="app_of_another_agent")
    stranger.stop()
    reports = Reports()

    DriftWatcher(docker.from_env, reports, tmp_path / "deployments").check()

    assert reports.seen == [[]]
