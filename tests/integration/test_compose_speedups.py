"""The installed compose CLI resolves a project the same with the agent's speedups as without
them (`compose_speedups`: for Debian's docker-compose 1.29, the standard library's distutils
instead of setuptools' shim). Real compose, no daemon needed for `config`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ferry_agent.compose import compose_command, compose_speedups
from tests.conftest import running_in_ci

COMPOSE = """\
x-common: &common
  restart: unless-stopped
  environment:
    GREETING: ${GREETING:-hello}
services:
  web:
    <<: *common
    image: busybox:1.36
    command: [sleep, '600']
    volumes: [data:/data, ./site:/site:ro]
volumes:
  data: {}
"""


def _resolve(folder: Path, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ["PATH"], "HOME": str(folder), **extra}
    command = compose_command()
    arguments = ["config", "--format", "json"] if command[-1] == "compose" else ["config"]
    return subprocess.run(
        [*command, "-p", "speedups", "-f", str(folder / "compose.yaml"), *arguments],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )


def test_compose_resolves_the_same_with_its_speedups(tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None and shutil.which("docker") is None:
        if running_in_ci():
            pytest.fail("CI must install compose")
        pytest.skip("no compose CLI on this machine")
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "site").mkdir()

    plain = _resolve(tmp_path, {})
    faster = _resolve(tmp_path, compose_speedups())

    assert plain.returncode == 0, plain.stderr
    assert (faster.returncode, faster.stdout, faster.stderr) == (0, plain.stdout, plain.stderr)
    if _python_of_compose_v1_has_distutils():
        assert compose_speedups() == {"SETUPTOOLS_USE_DISTUTILS": "stdlib"}


def _python_of_compose_v1_has_distutils() -> bool:
    """Whether compose is v1 on a Python with distutils of its own (3.11 and before, as
    Debian 12's docker-compose 1.29): where the speedup must apply."""
    command = compose_command()
    if command[-1] == "compose":
        return False
    interpreter = Path(command[0]).read_text(errors="replace").splitlines()[0].removeprefix("#!")
    version = subprocess.run(
        [*interpreter.split(), "-c", "import sys; print(sys.version_info < (3, 12))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return version.stdout.strip() == "True"
