"""ferry.aws makes its clients from one botocore session, and reads the region as the
environment says it at each call (the session is cached; its variables are not)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ferry import aws


@pytest.fixture(autouse=True)
def _fresh_session() -> Iterator[None]:
    """No session made with this module's environment outlives its tests."""
    aws.reset_clients()
    yield
    aws.reset_clients()


def test_region_follows_the_environment_after_the_session_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert aws.region() == "eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    assert aws.region() == "ap-southeast-2"


def test_a_client_takes_the_region_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unit")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit")
    assert aws.client("sts").meta.region_name == "eu-central-1"
