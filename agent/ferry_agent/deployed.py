"""What the agent deployed, kept beside each project, and how what runs now differs from it.

After a successful `up` the agent records, per service, compose's config hash of its containers
(`com.docker.compose.config-hash`: compose's own digest of the service's configuration and
image), how many containers it has and how many were running. The record lives in the project's
folder (`.ferry.deployed.json`), so it survives an agent restart and goes with the project when
it is removed; a deploy that fails has no record (the application is already out of sync then,
with the deploy's error). Differences are what the drift watcher reports:

- "web missing": no container of the service;
- "web recreated by hand": a container whose config hash is not the one `up` produced (someone
  ran compose by hand with another file or image);
- "web stopped" / "web paused" / "web: 1 of 2 running": fewer running than at deploy time.

A service that was not running when the deploy ended (a one-shot job) is not expected to run.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

log = logging.getLogger("ferry_agent")

DEPLOYED_NAME = ".ferry.deployed.json"
SERVICE_LABEL = "com.docker.compose.service"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
ONEOFF_LABEL = "com.docker.compose.oneoff"
# States in which a container counts as running: restarting is its restart policy at work
# (health reports a crash loop), not a difference someone made.
_RUNNING = ("running", "restarting")


class DeployedService(BaseModel):
    config_hash: str | None
    containers: int
    running: int


class DeployedState(BaseModel):
    """One project as the agent's last successful deploy left it."""

    application_id: str
    project_name: str
    commit: str
    services: dict[str, DeployedService]


@dataclass(frozen=True)
class Observed:
    """One container of a project as it is now."""

    service: str
    config_hash: str | None
    state: str


def observe(container: object) -> Observed | None:
    """A Docker SDK container as `Observed`; None for containers compose runs once
    (`compose run`), which are no part of what was deployed."""
    labels = getattr(container, "labels", {}) or {}
    if str(labels.get(ONEOFF_LABEL, "")).lower() == "true" or SERVICE_LABEL not in labels:
        return None
    attributes = getattr(container, "attrs", {}) or {}
    state = (attributes.get("State") or {}).get("Status") or getattr(container, "status", "")
    return Observed(str(labels[SERVICE_LABEL]), labels.get(CONFIG_HASH_LABEL), str(state))


def deployed_state(
    application_id: str, project_name: str, commit: str, containers: list[Observed]
) -> DeployedState:
    """The record of a deploy that just ended, from its project's containers."""
    services: dict[str, DeployedService] = {}
    for service in sorted({c.service for c in containers}):
        own = [c for c in containers if c.service == service]
        hashes = {c.config_hash for c in own}
        services[service] = DeployedService(
            config_hash=hashes.pop() if len(hashes) == 1 else None,
            containers=len(own),
            running=sum(c.state in _RUNNING for c in own),
        )
    return DeployedState(
        application_id=application_id,
        project_name=project_name,
        commit=commit,
        services=services,
    )


def differences(deployed: DeployedState, containers: list[Observed]) -> list[str]:
    """What differs between the deployed record and the containers now, service by service
    (empty: the project is as deployed)."""
    found: list[str] = []
    for service, expected in sorted(deployed.services.items()):
        own = [c for c in containers if c.service == service]
        if not own:
            found.append(f"{service} missing")
            continue
        if expected.config_hash is not None and any(
            c.config_hash != expected.config_hash for c in own
        ):
            found.append(f"{service} recreated by hand")
            continue
        running = sum(c.state in _RUNNING for c in own)
        if running >= expected.running:
            continue
        if running:
            found.append(f"{service}: {running} of {expected.running} running")
        elif all(c.state == "paused" for c in own):
            found.append(f"{service} paused")
        else:
            found.append(f"{service} stopped")
    return found


def record_path(project_dir: Path) -> Path:
    return project_dir / DEPLOYED_NAME


def write_deployed(project_dir: Path, state: DeployedState) -> None:
    """Record what a deploy left (atomically: a reader never sees half a record)."""
    path = record_path(project_dir)
    staged = path.with_name(f"{path.name}.tmp")
    staged.write_text(state.model_dump_json(indent=2))
    staged.replace(path)


def forget_deployed(project_dir: Path) -> None:
    """The project is about to change: nothing recorded holds until the deploy succeeds."""
    with contextlib.suppress(FileNotFoundError):
        record_path(project_dir).unlink()


def read_deployed(deployments_dir: Path) -> dict[str, DeployedState]:
    """Every recorded project under the deployments folder, by application id."""
    states: dict[str, DeployedState] = {}
    if not deployments_dir.is_dir():
        return states
    for path in sorted(deployments_dir.glob(f"*/{DEPLOYED_NAME}")):
        try:
            state = DeployedState.model_validate_json(path.read_text())
        except FileNotFoundError:
            continue  # removed meanwhile
        except (OSError, ValidationError) as exc:
            log.warning("ignoring %s: %s", path, exc)
            continue
        states[state.application_id] = state
    return states
