"""Notification URLs: what apprise accepts, how they are shown (redacted), and refusals that
happen before anything is sent. No network: every destination here is refused or unparseable."""

from __future__ import annotations

import socket

import pytest

from ferry.errors import InvalidInput
from ferry.outbound.http import AllowList
from ferry.outbound.notify import (
    NotificationResult,
    send_notification,
    validate_notification_url,
)


@pytest.mark.parametrize(
    ("url", "shown", "hidden"),
    [
        ("json://user:s3cret-pass@hooks.example.com/ferry", "json://user:****@", "s3cret-pass"),
        ("jsons://hooks.example.com:8443/in", "jsons://hooks.example.com:8443/in", None),
        (
            "discord://123456789012/AbCdEfGhIjKlMnOpQrStUv",
            "discord://",
            "AbCdEfGhIjKlMnOpQrStUv",
        ),
        (
            "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
            "slack://",
            "TIiajkdnlazkcOXrIdevi7FQ",
        ),
        (
            "gotify://gotify.example.com/AbCdEfTokenXyZ",
            "gotify://gotify.example.com/",
            "AbCdEfTokenXyZ",
        ),
        ("mailto://bob:mail-pass@example.com", "bob:****@example.com", "mail-pass"),
    ],
)
def test_validate_notification_url_known_scheme_returns_redacted(
    url: str, shown: str, hidden: str | None
) -> None:
    redacted = validate_notification_url(url)
    assert shown in redacted
    if hidden is not None:
        assert hidden not in redacted


@pytest.mark.parametrize(
    "url", ["https://user:topsecret@example.com/x", "nope://topsecret", "topsecret", ""]
)
def test_validate_notification_url_unparseable_raises_without_echoing_url(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_notification_url(url)
    assert "topsecret" not in str(caught.value)


def test_send_notification_unparseable_url_reports_not_raises() -> None:
    result = send_notification("nope://x", "title", "body", allow=AllowList())
    assert not result.ok
    assert result.error is not None
    assert "not a notification URL" in result.error


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("json://127.0.0.1:9/hook", "127.0.0.1 (loopback)"),
        ("jsons://169.254.169.254/latest/meta-data", "169.254.169.254 (cloud metadata)"),
        ("gotify://10.0.0.5/AbCdEfTokenXyZ", "10.0.0.5 (private)"),
        ("json://[::1]:9/hook", "::1 (loopback)"),
        ("mailto://bob:pw@example.com?smtp=192.168.1.25", "192.168.1.25 (private)"),
    ],
)
def test_send_notification_private_destination_refused_before_sending(
    url: str, address: str
) -> None:
    result = send_notification(url, "title", "body", allow=AllowList())
    assert result == NotificationResult(
        ok=False,
        error=f"refusing {address}: not a public address and not in the outbound allow-list",
    )


def test_send_notification_default_allow_list_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_OUTBOUND_ALLOW", "10.0.0.0/8")
    result = send_notification("json://192.168.0.1:9/x", "t", "b")
    assert not result.ok
    assert result.error is not None
    assert "192.168.0.1 (private)" in result.error


def test_send_notification_unresolvable_host_reports_cannot_resolve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_such_name(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    result = send_notification("gotify://gotify.invalid/AbCdEfTokenXyZ", "t", "b", allow=[])
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("cannot resolve gotify.invalid")
