"""The image watcher: does a running image's tag name another digest in its registry now?

For each application whose `image_updates` is not `off` (the control plane's list, read on every
pass), each service's image reference is compared with its registry (registry.py) every
`interval_seconds` (jittered, so agents do not ask in step), and at once when the image webhook
asks (a hint on the agent's queue naming images). The running side is the RepoDigest of the image
the container runs: an image no registry knows (built or imported on this host) has none and is
never asked about, and a reference pinned to a digest cannot move.

What moved is reported once per new digest; the control plane decides (notify, or redeploy; a
`debounced` answer is asked again after its `retry_after_seconds`). A registry that cannot answer
(401, 429, unreachable) is reported as the check's error, once per kind of failure, and checked
again on the next pass. All checks run on one thread, so each registry sees one request at a time.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import docker
import docker.errors

from ferry.domain.agent_messages import (
    AgentApplication,
    HealthStatus,
    ImageChange,
    ImageReport,
    ImageReportAnswer,
    ImageUpdates,
)
from ferry_agent.compose import APPLICATION_LABEL
from ferry_agent.control_plane import ControlPlaneError, ReportRefused
from ferry_agent.deployed import SERVICE_LABEL
from ferry_agent.health import DOCKER_ERRORS
from ferry_agent.registry import (
    ImageReference,
    RegistryClient,
    RegistryError,
    parse_reference,
    repo_digest,
)

log = logging.getLogger("ferry_agent")

_RETRY_SECONDS = 30.0


class ImageReporter(Protocol):
    def applications(self) -> list[AgentApplication]: ...

    def report_images(self, report: ImageReport) -> ImageReportAnswer: ...


class ImageWatcher:
    def __init__(
        self,
        docker_client: Callable[[], docker.DockerClient],
        reporter: ImageReporter,
        registry: RegistryClient,
        *,
        interval_seconds: float = 300.0,
        jitter: float = 0.1,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._docker_client = docker_client
        self._reporter = reporter
        self._registry = registry
        self._interval = interval_seconds
        self._jitter = jitter
        self._rng = rng
        self._changed = threading.Condition()
        self._next_pass = time.monotonic() + self._jittered()
        self._hinted: set[str] = set()  # repository names the image webhook named
        self._retry: dict[str, float] = {}  # application → when to check it again (debounced)
        self._busy: set[str] = set()
        # What the control plane last heard: the moved digests, and the kinds of failure.
        self._reported_changes: dict[str, frozenset[tuple[str, str]]] = {}
        self._reported_errors: dict[str, frozenset[str]] = {}
        self._stop = threading.Event()

    def _jittered(self) -> float:
        return self._interval * (1 + self._jitter * (2 * self._rng() - 1))

    # --- lifecycle and hooks -------------------------------------------------------------

    def start(self) -> None:
        threading.Thread(target=self._loop, name="images", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    def hint(self, images: list[str]) -> None:
        """The image webhook named these images: check the applications running them now
        (every watched image when the list is empty)."""
        names = set()
        for image in images or ["*"]:
            if image == "*":
                names.add("*")
                continue
            try:
                names.add(parse_reference(image).name)
            except ValueError:
                log.warning("ignoring the image webhook's %r: not an image reference", image)
        with self._changed:
            self._hinted |= names
            self._changed.notify_all()

    def request_started(self, application_id: str) -> None:
        with self._changed:
            self._busy.add(application_id)

    def request_finished(
        self, application_id: str, health: HealthStatus | None, removed: bool
    ) -> None:
        with self._changed:
            self._busy.discard(application_id)
            if removed:
                self._reported_changes.pop(application_id, None)
                self._reported_errors.pop(application_id, None)

    # --- the loop ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._changed:
                self._changed.wait(timeout=self._until_next())
                now = time.monotonic()
                hinted, self._hinted = self._hinted, set()
                retry = {a for a, at in self._retry.items() if at <= now}
                for application_id in retry:
                    del self._retry[application_id]
                full = now >= self._next_pass
                if full:
                    self._next_pass = now + self._jittered()
            if self._stop.is_set():
                return
            if not (full or hinted or retry):
                continue
            images: set[str] | None = None
            applications: set[str] | None = None
            if not full and "*" not in hinted and not (hinted and retry):
                # Only what was asked: the webhook's images, or the applications held back.
                images, applications = (hinted, None) if hinted else (None, retry)
            try:
                self.check(images=images, applications=applications)
            except (ControlPlaneError, *DOCKER_ERRORS) as exc:
                log.warning("image check not made (%s); retrying in %.0f s", exc, _RETRY_SECONDS)
                with self._changed:
                    self._next_pass = min(self._next_pass, time.monotonic() + _RETRY_SECONDS)

    def _until_next(self) -> float:
        waits = [self._next_pass, *self._retry.values()]
        return max(0.05, min(waits) - time.monotonic())

    # --- one pass --------------------------------------------------------------------------------

    def check(self, images: set[str] | None = None, applications: set[str] | None = None) -> None:
        """Check the watched applications (only `applications`, if given), their images (only
        those whose repository is in `images`, if given), and report what changed."""
        watched = [
            a
            for a in self._reporter.applications()
            if a.image_updates is not ImageUpdates.OFF
            and (applications is None or a.application_id in applications)
        ]
        known: dict[str, str | RegistryError] = {}  # one question per reference and pass
        checked = 0
        for application in watched:
            with self._changed:
                if application.application_id in self._busy:
                    continue
            with contextlib.closing(self._docker_client()) as client:
                running = _running_images(client, application.application_id)
            changes: list[ImageChange] = []
            errors: dict[str, str] = {}
            for service, (text, reference, digest) in sorted(running.items()):
                if images is not None and reference.name not in images:
                    continue
                checked += 1
                answer = known.get(str(reference))
                if answer is None:
                    try:
                        answer = self._registry.digest(reference)
                    except RegistryError as exc:
                        answer = exc
                    known[str(reference)] = answer
                if isinstance(answer, RegistryError):
                    errors[answer.key] = f"{text}: {answer}"
                elif answer != digest:
                    changes.append(
                        ImageChange(
                            service=service,
                            image=text,
                            running_digest=digest,
                            registry_digest=answer,
                        )
                    )
            self._report(application.application_id, changes, errors)
        log.info("image check done: %d image(s) of %d application(s)", checked, len(watched))

    def _report(
        self, application_id: str, changes: list[ImageChange], errors: dict[str, str]
    ) -> None:
        moved = frozenset((c.service, c.registry_digest) for c in changes)
        failed = frozenset(errors)
        with self._changed:
            new_changes = bool(moved) and moved != self._reported_changes.get(application_id)
            new_errors = failed - self._reported_errors.get(application_id, frozenset())
            if not moved:
                self._reported_changes.pop(application_id, None)
            # A kind of failure that went away is reported again if it comes back.
            self._reported_errors[application_id] = (
                self._reported_errors.get(application_id, frozenset()) & failed
            )
        if not new_changes and not new_errors:
            return
        error = "; ".join(errors[key] for key in sorted(new_errors)) or None
        report = ImageReport(
            application_id=application_id, changes=changes if new_changes else [], error=error
        )
        try:
            answer = self._reporter.report_images(report)
        except ReportRefused as exc:
            log.info("image report for %s refused: %s", application_id, exc)
            return
        except ControlPlaneError as exc:
            log.warning("image report for %s failed (%s); retrying", application_id, exc)
            self._check_again(application_id, _RETRY_SECONDS)
            return
        if error:
            log.warning("image check of %s: %s", application_id, error)
        with self._changed:
            self._reported_errors[application_id] = (
                self._reported_errors.get(application_id, frozenset()) | new_errors
            )
        if not new_changes:
            return
        described = "; ".join(change.describe() for change in changes)
        if answer.action == "debounced":
            wait = float(answer.retry_after_seconds or _RETRY_SECONDS)
            log.info("%s: %s (redeploy held back %.0f s)", application_id, described, wait)
            self._check_again(application_id, wait)
            return
        log.info("%s: %s (%s)", application_id, described, answer.action)
        with self._changed:
            self._reported_changes[application_id] = moved

    def _check_again(self, application_id: str, seconds: float) -> None:
        with self._changed:
            self._retry[application_id] = time.monotonic() + seconds
            self._changed.notify_all()


def _running_images(
    client: docker.DockerClient, application_id: str
) -> dict[str, tuple[str, ImageReference, str]]:
    """Per service: the reference its container was started from, normalized, and the digest
    its image came from in that reference's repository. Services whose image no registry knows
    (or that name a digest, which cannot move) are left out."""
    found: dict[str, tuple[str, ImageReference, str]] = {}
    containers = client.containers.list(
        all=True, filters={"label": f"{APPLICATION_LABEL}={application_id}"}
    )
    for container in containers:
        service = container.labels.get(SERVICE_LABEL)
        text = (container.attrs.get("Config") or {}).get("Image")
        if not service or not text or service in found:
            continue
        try:
            reference = parse_reference(text)
        except ValueError:
            log.warning("%s: %r is not an image reference Ferry can check", service, text)
            continue
        if reference.digest is not None:
            continue
        digest = repo_digest(_repo_digests(client, container.attrs.get("Image")), reference)
        if digest is not None:
            found[service] = (text, reference, digest)
    return found


def _repo_digests(client: docker.DockerClient, image_id: Any) -> list[str]:
    if not image_id:
        return []
    try:
        return list(client.images.get(image_id).attrs.get("RepoDigests") or [])
    except docker.errors.NotFound:
        return []
