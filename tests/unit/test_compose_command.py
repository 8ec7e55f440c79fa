"""Which compose CLI the agent runs: the v2 plugin when `docker compose` answers, else v1; and
what it runs faster with."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry_agent.compose import DeployError, compose_command, compose_speedups


def _program(directory: Path, name: str, script: str) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


def test_compose_v2_plugin_preferred_when_it_answers(bin_dir: Path) -> None:
    docker = _program(bin_dir, "docker", '[ "$1 $2" = "compose version" ] && exit 0; exit 1')
    _program(bin_dir, "docker-compose", "exit 0")

    assert compose_command() == [str(docker), "compose"]


def test_compose_v1_used_when_the_plugin_is_missing(bin_dir: Path) -> None:
    _program(bin_dir, "docker", "echo \"docker: 'compose' is not a docker command\" >&2; exit 1")
    legacy = _program(bin_dir, "docker-compose", "exit 0")

    assert compose_command() == [str(legacy)]


def test_compose_neither_installed_says_so(bin_dir: Path) -> None:
    with pytest.raises(DeployError, match="neither `docker compose` nor `docker-compose`"):
        compose_command()


def test_compose_found_once_per_path(bin_dir: Path) -> None:
    """Each deploy runs compose more than once; the probe (a process of its own) runs once."""
    probes = bin_dir / "probes"
    _program(bin_dir, "docker", f'echo probe >> {probes}; [ "$1 $2" = "compose version" ]')

    for _ in range(3):
        assert compose_command() == [str(bin_dir / "docker"), "compose"]

    assert probes.read_text().count("probe") == 1


def test_compose_installed_later_is_found(bin_dir: Path) -> None:
    with pytest.raises(DeployError):
        compose_command()
    legacy = _program(bin_dir, "docker-compose", "exit 0")

    assert compose_command() == [str(legacy)]


def test_compose_v1_starts_with_the_standard_distutils_where_it_runs_with_it(
    bin_dir: Path,
) -> None:
    _program(bin_dir, "docker", "exit 1")
    only_with_stdlib = '[ "$1" = version ] && [ "$SETUPTOOLS_USE_DISTUTILS" = stdlib ]'
    _program(bin_dir, "docker-compose", only_with_stdlib)

    assert compose_speedups() == {"SETUPTOOLS_USE_DISTUTILS": "stdlib"}


def test_compose_v1_that_fails_with_the_standard_distutils_runs_as_it_was(bin_dir: Path) -> None:
    # Python 3.12 has no distutils of its own: compose 1.29 there needs setuptools' shim.
    _program(bin_dir, "docker", "exit 1")
    _program(bin_dir, "docker-compose", '[ "$SETUPTOOLS_USE_DISTUTILS" != stdlib ]')

    assert compose_speedups() == {}


def test_compose_v2_plugin_needs_no_speedup(bin_dir: Path) -> None:
    _program(bin_dir, "docker", '[ "$1 $2" = "compose version" ]')

    assert compose_speedups() == {}


def test_operator_choice_of_distutils_is_left_alone(
    bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _program(bin_dir, "docker", "exit 1")
    _program(bin_dir, "docker-compose", "exit 0")
    monkeypatch.setenv("SETUPTOOLS_USE_DISTUTILS", "local")

    assert compose_speedups() == {}
