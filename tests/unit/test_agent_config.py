"""The agent's settings: environment variables, a KEY=value file, and which one wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ferry_agent.main import load_config


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "FERRY_API_URL",
        "FERRY_AGENT_TOKEN",
        "FERRY_MAX_PARALLEL_DEPLOYS",
        "FERRY_MAX_PARALLEL_JOBS",
        "DOCKER_HOST",
    ):
        monkeypatch.delenv(name, raising=False)


def _settings_file(folder: Path, *more: str) -> Path:
    """An agent settings file with the API, a token and 2 parallel deploys, then `more` lines."""
    settings = folder / "ferry-agent.env"
    lines = [
        "FERRY_API_URL=https://ferry.example.com",
        "FERRY_AGENT_TOKEN=agt_file.secret",
        "FERRY_MAX_PARALLEL_DEPLOYS=2",
        *more,
    ]
    settings.write_text("".join(f"{line}\n" for line in lines))
    return settings


def test_config_file_supplies_settings_and_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings_file(
        tmp_path,
        'FERRY_POLICY_BYPASS={"monitoring": ["docker_socket"]}',
        "DOCKER_HOST=ssh://deploy@docker-host",
    )
    monkeypatch.setenv("FERRY_MAX_PARALLEL_DEPLOYS", "6")

    config = load_config(settings)

    assert config.api_url == "https://ferry.example.com"
    assert config.agent_token == "agt_file.secret"
    assert config.max_parallel_deploys == 6  # the environment wins
    assert config.policy_bypass == {"monitoring": ["docker_socket"]}
    assert config.docker_host == "ssh://deploy@docker-host"
    assert "agt_file.secret" not in repr(config)


def test_config_file_missing_exits_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"configuration file .*absent\.env not found"):
        load_config(tmp_path / "absent.env")


def test_config_from_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_API_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("FERRY_AGENT_TOKEN", "agt_env.secret")

    config = load_config(None)

    assert config.api_url == "http://127.0.0.1:8080"
    assert config.max_parallel_deploys == 4
    assert config.docker_host is None


def test_config_max_parallel_jobs_still_read_under_its_old_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FERRY_API_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("FERRY_AGENT_TOKEN", "agt_env.secret")
    monkeypatch.setenv("FERRY_MAX_PARALLEL_JOBS", "3")

    assert load_config(None).max_parallel_deploys == 3


def test_config_environment_wins_over_file_under_another_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings_file(tmp_path)
    monkeypatch.setenv("FERRY_MAX_PARALLEL_JOBS", "3")
    monkeypatch.setenv("ferry_heartbeat_seconds", "5")  # names are read in any case

    config = load_config(settings)

    assert config.max_parallel_deploys == 3
    assert config.heartbeat_seconds == 5


def test_config_missing_or_invalid_settings_name_their_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FERRY_POLICY_BYPASS", "not json")

    with pytest.raises(ValidationError) as raised:
        load_config(None)

    problems = {(str(e["loc"][0]), e["type"]) for e in raised.value.errors()}
    assert ("api_url", "missing") in problems
    assert ("agent_token", "missing") in problems
    assert ("policy_bypass", "dict_type") in problems
