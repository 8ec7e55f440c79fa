"""What the agent deployed against what runs now: each kind of drift, and what is not drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry_agent.deployed import (
    Observed,
    deployed_state,
    differences,
    forget_deployed,
    read_deployed,
    write_deployed,
)

AT_DEPLOY = [
    Observed("web", "hash-web", "running"),
    Observed("worker", "hash-worker", "running"),
    Observed("worker", "hash-worker", "running"),
    Observed("migrate", "hash-migrate", "exited"),  # a one-shot job, done when up returned
]
STATE = deployed_state("app_1", "shop", "c" * 40, AT_DEPLOY)


def test_deployed_state_counts_containers_and_running_per_service() -> None:
    assert {name: (s.containers, s.running) for name, s in STATE.services.items()} == {
        "migrate": (1, 0),
        "web": (1, 1),
        "worker": (2, 2),
    }


def test_differences_as_deployed_none() -> None:
    assert differences(STATE, AT_DEPLOY) == []


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(
            [Observed("web", "hash-web", "exited"), *AT_DEPLOY[1:]], ["web stopped"], id="stopped"
        ),
        pytest.param(
            [Observed("web", "hash-web", "paused"), *AT_DEPLOY[1:]], ["web paused"], id="paused"
        ),
        pytest.param(AT_DEPLOY[:1] + AT_DEPLOY[3:], ["worker missing"], id="missing"),
        pytest.param(
            [Observed("web", "hash-by-hand", "running"), *AT_DEPLOY[1:]],
            ["web recreated by hand"],
            id="recreated",
        ),
        pytest.param(
            [*AT_DEPLOY[:2], Observed("worker", "hash-worker", "exited"), AT_DEPLOY[3]],
            ["worker: 1 of 2 running"],
            id="partly",
        ),
        pytest.param(
            [Observed("web", "hash-web", "dead"), AT_DEPLOY[3]],
            ["web stopped", "worker missing"],
            id="several",
        ),
    ],
)
def test_differences_each_kind_named(now: list[Observed], expected: list[str]) -> None:
    assert differences(STATE, now) == expected


def test_differences_restarting_and_one_shot_exited_are_not_drift() -> None:
    now = [Observed("web", "hash-web", "restarting"), *AT_DEPLOY[1:]]
    assert differences(STATE, now) == []
    # The one-shot job may run again and exit: still as deployed.
    assert (
        differences(STATE, [*AT_DEPLOY[:3], Observed("migrate", "hash-migrate", "running")]) == []
    )


def test_deployed_record_written_read_and_forgotten(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    (tmp_path / "other").mkdir()  # a project without a record (its deploy failed)

    write_deployed(project, STATE)

    assert read_deployed(tmp_path) == {"app_1": STATE}
    forget_deployed(project)
    forget_deployed(project)  # nothing to forget is fine
    assert read_deployed(tmp_path) == {}
    assert read_deployed(tmp_path / "absent") == {}
