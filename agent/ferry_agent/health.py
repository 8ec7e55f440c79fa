"""The health watcher: Docker events for Ferry's containers → settled health → the control plane
(and the drift watcher, which listens to the same stream).

A deploy's answer carries the health of that moment; what happens afterwards (a container dies,
its check starts failing, someone runs `docker stop`) reaches the control plane only through this
watcher. Events come in bursts (a restart is kill, die, stop, start, health_status), so they are
debounced per application; the health is then read from the containers themselves (an event says
that something changed, not what the whole application looks like) and reported only when it
differs from what was last reported. A periodic resync reads every labelled container again,
covering events lost while the Docker daemon was away (the watcher reconnects with a backoff).

While a request of an application runs, the worker is the authority: its answer carries the health,
and the watcher looks again once the request is over. Reports go out as the agent; the control plane
applies them only to applications assigned to it, so a 403 or 404 (another agent's containers on
a shared daemon, a deleted application) is remembered and not repeated.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import docker
import docker.errors
import requests.exceptions

from ferry.domain.agent_messages import ContainerState, HealthStatus
from ferry_agent.compose import APPLICATION_LABEL, container_state, settled_health
from ferry_agent.control_plane import ControlPlaneError, ReportRefused

log = logging.getLogger("ferry_agent")

# Event actions that can change an application's health (health_status comes as
# "health_status: healthy" and so on).
_ACTIONS = ("start", "die", "stop", "kill", "pause", "unpause", "destroy", "oom", "health_status")
DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)
_REPORT_RETRY_SECONDS = 5.0


class HealthReporter(Protocol):
    def report_health(
        self, application_id: str, health: HealthStatus, detail: str | None = None
    ) -> None: ...


def health_detail(containers: list[ContainerState]) -> str | None:
    """The containers that make an application unhealthy, e.g. "web-1: exited"."""
    if not containers:
        return "no containers"
    failing = [
        f"{c.name}: {c.health if c.state == 'running' else c.state}"
        for c in containers
        if c.state != "running" or c.health == "unhealthy"
    ]
    return ", ".join(failing) or None


class HealthWatcher:
    def __init__(
        self,
        docker_client: Callable[[], docker.DockerClient],
        reporter: HealthReporter,
        *,
        debounce_seconds: float = 2.0,
        resync_seconds: float = 60.0,
        reconnect_max_seconds: float = 30.0,
        listeners: tuple[Callable[[str], None], ...] = (),
    ) -> None:
        self._docker_client = docker_client
        self._reporter = reporter
        self._debounce = debounce_seconds
        self._resync_every = resync_seconds
        self._reconnect_max = reconnect_max_seconds
        self._changed = threading.Condition()
        self._pending: dict[str, float] = {}  # application → when to read its health
        self._last: dict[str, HealthStatus] = {}  # what the control plane last heard
        self._busy: set[str] = set()  # applications with a request running
        self._foreign: set[str] = set()  # applications the control plane will not take from us
        self._resync_due = 0.0
        self._stop = threading.Event()
        self._stream: Any = None
        # Others told of every application whose containers changed (the drift watcher): one
        # event stream serves them all.
        self._listeners = listeners

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        for target, name in ((self._listen, "docker-events"), (self._settle, "health")):
            threading.Thread(target=target, name=name, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
            stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    # --- the worker's hooks (RequestObserver) ---------------------------------------------------

    def request_started(self, application_id: str) -> None:
        with self._changed:
            self._busy.add(application_id)
            self._foreign.discard(application_id)  # assigned to us, or it would not be here

    def request_finished(
        self, application_id: str, health: HealthStatus | None, removed: bool
    ) -> None:
        with self._changed:
            self._busy.discard(application_id)
            if removed:
                self._foreign.add(application_id)
                self._pending.pop(application_id, None)
                self._last.pop(application_id, None)
                return
            if health is not None:
                self._last[application_id] = health  # the request's answer carried it
            self._pending[application_id] = time.monotonic() + self._debounce
            self._changed.notify_all()

    # --- events ----------------------------------------------------------------------------

    def _listen(self) -> None:
        first_delay = min(1.0, self._reconnect_max)
        delay = first_delay
        while not self._stop.is_set():
            try:
                for application_id in self._events():
                    delay = first_delay
                    self.changed(application_id)
                    for listener in self._listeners:
                        listener(application_id)
                if self._stop.is_set():
                    return
                log.warning("Docker event stream ended; reconnecting")
            except DOCKER_ERRORS as exc:
                if self._stop.is_set():
                    return
                log.warning("Docker events unavailable (%s); retrying in %.0f s", exc, delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self._reconnect_max)

    def _events(self) -> Iterator[str]:
        client = self._docker_client()
        try:
            stream = client.events(
                decode=True, filters={"type": "container", "label": [APPLICATION_LABEL]}
            )
            with self._changed:
                self._stream = stream
                # Whatever happened while we were not listening is read by a resync.
                self._resync_due = 0.0
                self._changed.notify_all()
            log.info("watching Docker events for application health")
            for event in stream:
                action = str(event.get("Action") or event.get("status") or "")
                attributes = (event.get("Actor") or {}).get("Attributes") or {}
                application_id = attributes.get(APPLICATION_LABEL)
                if application_id and action.startswith(_ACTIONS):
                    yield str(application_id)
        finally:
            with self._changed:
                self._stream = None
            client.close()

    def changed(self, application_id: str) -> None:
        """Something happened to the application's containers: read its health once it is quiet
        for the debounce time."""
        with self._changed:
            self._pending[application_id] = time.monotonic() + self._debounce
            self._changed.notify_all()

    # --- settling and reporting ---------------------------------------------------------------

    def _settle(self) -> None:
        while not self._stop.is_set():
            with self._changed:
                self._changed.wait(timeout=self._until_next())
                now = time.monotonic()
                resync = now >= self._resync_due
                due = [
                    application_id
                    for application_id, at in self._pending.items()
                    if at <= now and application_id not in self._busy
                ]
                for application_id in due:
                    del self._pending[application_id]
                if resync:
                    self._resync_due = now + self._resync_every
            if self._stop.is_set():
                return
            try:
                if resync:
                    self.resync()
                for application_id in due:
                    self.read_and_report(application_id)
            except DOCKER_ERRORS as exc:
                log.warning("cannot read container health (%s)", exc)
                with self._changed:
                    retry = time.monotonic() + self._reconnect_max
                    for application_id in due:
                        self._pending.setdefault(application_id, retry)
                    self._resync_due = min(self._resync_due, retry)

    def _until_next(self) -> float:
        now = time.monotonic()
        waits = [self._resync_due - now]
        waits += [at - now for app, at in self._pending.items() if app not in self._busy]
        return max(0.05, min(waits))

    def read_and_report(self, application_id: str) -> None:
        """Read one application's containers and report their settled health if it changed."""
        with contextlib.closing(self._docker_client()) as client:
            containers = client.containers.list(
                all=True, filters={"label": f"{APPLICATION_LABEL}={application_id}"}
            )
            states = [container_state(container) for container in containers]
        self._report_if_changed(application_id, states)

    def resync(self) -> None:
        """Read every labelled container and report each application whose health changed."""
        with contextlib.closing(self._docker_client()) as client:
            containers = client.containers.list(all=True, filters={"label": APPLICATION_LABEL})
            grouped: dict[str, list[ContainerState]] = defaultdict(list)
            for container in containers:
                grouped[container.labels[APPLICATION_LABEL]].append(container_state(container))
        with self._changed:
            # Applications that had containers and now have none are down, not forgotten.
            for application_id in self._last:
                grouped.setdefault(application_id, [])
        for application_id, states in grouped.items():
            self._report_if_changed(application_id, states)

    def _report_if_changed(self, application_id: str, states: list[ContainerState]) -> None:
        health = settled_health(states)
        with self._changed:
            if application_id in self._busy or application_id in self._foreign:
                return
            if health is HealthStatus.UNKNOWN:
                return  # checks still starting: their health_status event comes when they settle
            if self._last.get(application_id) is health:
                return
        detail = health_detail(states)
        try:
            self._reporter.report_health(application_id, health, detail)
        except ReportRefused as exc:
            log.info("not reporting %s any more: %s", application_id, exc)
            with self._changed:
                self._foreign.add(application_id)
                self._last.pop(application_id, None)
            return
        except ControlPlaneError as exc:
            log.warning("health report for %s failed (%s); retrying", application_id, exc)
            with self._changed:
                self._pending[application_id] = time.monotonic() + _REPORT_RETRY_SECONDS
            return
        log.info("%s is %s%s", application_id, health.value, f" ({detail})" if detail else "")
        with self._changed:
            self._last[application_id] = health
