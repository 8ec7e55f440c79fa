"""The drift watcher: what runs, compared with what the agent deployed (deployed.py).

It looks at a project when Docker says one of its containers changed (the health watcher's event
stream, debounced the same way) and at every project every `check_seconds`, and reports to the
control plane whenever what differs changes: a new difference, or none any more. The first look
after the agent starts is always reported, so the control plane learns of anything that changed
while no agent watched (it ignores a report that repeats what it knows).

The agent's own work is not drift: while a request of an application runs (the worker's
RequestObserver hooks), nothing of it is looked at; once the request is over, the new deployed
record is the reference, and the request's answer is what the control plane knows (no drift).
Reports refused with 403/404 (another agent's project on a shared daemon, a deleted application) are
not repeated.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import docker

from ferry.domain.agent_messages import DriftReport, HealthStatus
from ferry_agent.compose import APPLICATION_LABEL, PROJECT_LABEL
from ferry_agent.control_plane import ControlPlaneError, ReportRefused
from ferry_agent.deployed import DeployedState, differences, observe, read_deployed
from ferry_agent.health import DOCKER_ERRORS

log = logging.getLogger("ferry_agent")

_RETRY_SECONDS = 5.0


class DriftReporter(Protocol):
    def report_drift(self, report: DriftReport) -> None: ...


class DriftWatcher:
    def __init__(
        self,
        docker_client: Callable[[], docker.DockerClient],
        reporter: DriftReporter,
        deployments_dir: Path,
        *,
        check_seconds: float = 60.0,
        debounce_seconds: float = 2.0,
    ) -> None:
        self._docker_client = docker_client
        self._reporter = reporter
        self._deployments_dir = deployments_dir
        self._check_every = check_seconds
        self._debounce = debounce_seconds
        self._changed = threading.Condition()
        self._pending: dict[str, float] = {}  # application → when to look at it
        self._reported: dict[str, tuple[str, ...]] = {}  # what the control plane last heard
        self._busy: set[str] = set()
        self._foreign: set[str] = set()
        self._check_all_at = 0.0
        self._stop = threading.Event()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        threading.Thread(target=self._loop, name="drift", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    # --- the worker's hooks (RequestObserver) and the event stream ----------------------------

    def request_started(self, application_id: str) -> None:
        with self._changed:
            self._busy.add(application_id)
            self._foreign.discard(application_id)
            self._pending.pop(application_id, None)

    def request_finished(
        self, application_id: str, health: HealthStatus | None, removed: bool
    ) -> None:
        with self._changed:
            self._busy.discard(application_id)
            if removed:
                self._reported.pop(application_id, None)
                return
            # The request's answer told the control plane what runs now (synced, or why not): a
            # difference seen from here on is new to it, even one it heard of before the request.
            self._reported[application_id] = ()
            self._pending[application_id] = time.monotonic() + self._debounce
            self._changed.notify_all()

    def changed(self, application_id: str) -> None:
        """Docker said one of the application's containers changed: look once it is quiet."""
        with self._changed:
            self._pending[application_id] = time.monotonic() + self._debounce
            self._changed.notify_all()

    # --- looking ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._changed:
                self._changed.wait(timeout=self._until_next())
                now = time.monotonic()
                check_all = now >= self._check_all_at
                due = {a for a, at in self._pending.items() if at <= now and a not in self._busy}
                for application_id in due:
                    del self._pending[application_id]
                if check_all:
                    self._check_all_at = now + self._check_every
            if self._stop.is_set():
                return
            try:
                self.check(None if check_all else due)
            except DOCKER_ERRORS as exc:
                log.warning("cannot compare containers with what was deployed (%s)", exc)
                with self._changed:
                    retry = time.monotonic() + _RETRY_SECONDS
                    for application_id in due:
                        self._pending.setdefault(application_id, retry)
                    self._check_all_at = min(self._check_all_at, retry)

    def _until_next(self) -> float:
        now = time.monotonic()
        waits = [self._check_all_at - now]
        waits += [at - now for app, at in self._pending.items() if app not in self._busy]
        return max(0.05, min(waits))

    def check(self, only: set[str] | None = None) -> None:
        """Compare the recorded projects (all, or the `only` applications) with their
        containers and report each application whose differences changed."""
        deployed = read_deployed(self._deployments_dir)
        with self._changed:
            skip = self._busy | self._foreign
        wanted = [
            state
            for application_id, state in deployed.items()
            if application_id not in skip and (only is None or application_id in only)
        ]
        if not wanted:
            return
        with contextlib.closing(self._docker_client()) as client:
            found = {state.application_id: self._differences(client, state) for state in wanted}
        for state in wanted:
            self._report_if_changed(state, found[state.application_id])

    @staticmethod
    def _differences(client: docker.DockerClient, state: DeployedState) -> tuple[str, ...]:
        # Both labels: on a daemon shared with other agents, a project name is not unique.
        containers = client.containers.list(
            all=True,
            filters={
                "label": [
                    f"{PROJECT_LABEL}={state.project_name}",
                    f"{APPLICATION_LABEL}={state.application_id}",
                ]
            },
        )
        observed = [found for c in containers if (found := observe(c)) is not None]
        return tuple(differences(state, observed))

    def _report_if_changed(self, state: DeployedState, found: tuple[str, ...]) -> None:
        application_id = state.application_id
        with self._changed:
            if application_id in self._busy or application_id in self._foreign:
                return  # a request began meanwhile: it decides what runs
            if self._reported.get(application_id) == found:
                return
        report = DriftReport(
            application_id=application_id, commit=state.commit, differences=list(found)
        )
        try:
            self._reporter.report_drift(report)
        except ReportRefused as exc:
            log.info("not reporting drift of %s any more: %s", application_id, exc)
            with self._changed:
                self._foreign.add(application_id)
            return
        except ControlPlaneError as exc:
            log.warning("drift report for %s failed (%s); retrying", application_id, exc)
            with self._changed:
                self._pending[application_id] = time.monotonic() + _RETRY_SECONDS
            return
        if found:
            log.info("%s drifted: %s", application_id, ", ".join(found))
        elif application_id in self._reported:
            log.info("%s is back at its deployed state", application_id)
        with self._changed:
            self._reported[application_id] = found
