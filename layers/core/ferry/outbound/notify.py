"""Deploy notifications to user-configured apprise URLs (Discord, Slack, Teams, Gotify, e-mail,
json:// webhooks, ...), sent under the same SSRF rules as every other outbound request.

apprise's plugins do their HTTP with `requests` (module-level `requests.post(...)`, each call in a
fresh Session), not with our httpx client, and apprise offers no hook to swap the transport. So
while one send runs, the sessions apprise creates are handed a vetting adapter instead of
requests' own: `requests.Session.get_adapter` is wrapped once, and the wrapper acts only when a
context variable says "a Ferry notification is being sent in this context". Everything else in the
process (the Docker SDK's requests, boto3's urllib3, other threads) passes straight through. apprise
carries context variables into the worker threads it dispatches to, so its own threads stay checked.

The vetting adapter's connections resolve the host through `check_destination` (ferry/outbound/
http.py), refuse non-public answers that the allow-list does not name, and connect to the vetted
address itself (the name stays the TLS server name). Every redirect hop opens its connection the
same way. Environment proxies are ignored for these requests: a proxy would resolve the name
itself, beyond the check.

Targets that do not speak HTTP through requests (mailto:// over smtplib, and the rarer socket
based plugins) have their declared host checked the same way before anything is sent; the
library then resolves it again when it connects, which leaves those a rebinding window that the
HTTP path does not have.

A notification is a side effect of a deploy, never a reason for one to fail: `send_notification`
reports every failure, refusals included, in its result instead of raising.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import apprise
import requests
from apprise.manager_plugins import NotificationManager
from apprise.plugins.base import NotifyBase
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from ferry.errors import InvalidInput
from ferry.outbound.http import (
    AllowList,
    AllowSpec,
    DestinationRefused,
    check_destination,
    check_scheme,
    resolve_allow_list,
)

# apprise stops waiting for a target after this long (its plugins also time out each request).
NOTIFY_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class NotificationResult:
    """What became of one notification: delivered, or why not (safe to show and store)."""

    ok: bool
    error: str | None = None


def validate_notification_url(url: str) -> str:
    """Check that apprise can send to `url` and return it redacted (passwords and tokens
    masked): the form to show and log. Raises InvalidInput without echoing the URL, which may
    hold secrets."""
    redacted: str = _instantiate(url).url(privacy=True)  # type: ignore[no-untyped-call]
    return redacted


def send_notification(
    url: str, title: str, body: str, *, allow: AllowSpec = None
) -> NotificationResult:
    """Send one notification to an apprise URL through the outbound checks.

    `allow` names non-public destinations that are nevertheless fine (default:
    FERRY_OUTBOUND_ALLOW). Never raises for a target that cannot be reached, refuses or is
    refused by the SSRF checks: the result says what happened.
    """
    try:
        allow_list = resolve_allow_list(allow)
        plugin = _instantiate(url)
    except InvalidInput as exc:
        return NotificationResult(ok=False, error=str(exc))
    destination = _declared_destination(plugin)
    if destination is not None:
        host, port = destination
        try:
            check_destination(host, port, allow_list)
        except DestinationRefused as exc:
            return NotificationResult(ok=False, error=str(exc))
        except OSError as exc:
            return NotificationResult(ok=False, error=f"cannot resolve {host}: {exc}")

    try:
        with _checked_requests(allow_list) as scope:
            outcome = apprise.Apprise(plugin, asset=_asset()).notify(
                body=body, title=title, log_level=logging.WARNING
            )
    except Exception as exc:
        # A broken plugin (or a guard that could not be put in place) must not fail the deploy.
        return NotificationResult(ok=False, error=f"notification failed: {exc}")

    refusal = scope.first_refusal()
    if refusal is not None:
        return NotificationResult(ok=False, error=refusal)
    if outcome:
        return NotificationResult(ok=True)
    return NotificationResult(ok=False, error=_failure_reason(outcome))


def _asset() -> apprise.AppriseAsset:
    return apprise.AppriseAsset(app_id="Ferry", service_timeout=NOTIFY_TIMEOUT_SECONDS)


def _instantiate(url: str) -> NotifyBase:
    plugin = apprise.Apprise.instantiate(url.strip(), asset=_asset())
    if plugin is None:
        raise InvalidInput(_unusable_reason(url))
    return plugin


def _unusable_reason(url: str) -> str:
    """Why apprise cannot use `url`, without echoing it (it holds tokens): an unknown scheme, or
    a known one whose URL lacks the parts that service needs (pointing to its format)."""
    scheme = url.strip().partition("://")[0].lower() if "://" in url else ""
    if not scheme:
        return "a notification URL starts with its service's scheme (slack://, json://, ...)"
    plugins = NotificationManager()  # type: ignore[no-untyped-call]
    if scheme in plugins:
        setup = getattr(plugins[scheme], "setup_url", None) or "https://appriseit.com/services/"
        return f"not a valid {scheme}:// URL: it lacks parts that service needs (see {setup})"
    return "not a notification URL apprise can send to (unknown service scheme)"


def _declared_destination(plugin: NotifyBase) -> tuple[str, int] | None:
    """The network host a plugin was configured with, when its URL names one (json://host,
    gotify://host, the SMTP server of mailto://); None for service URLs such as discord://id/token
    whose "host" is an id and whose real host is fixed by apprise."""
    port = getattr(plugin, "port", None)
    port = port if isinstance(port, int) else 0
    smtp_host = getattr(plugin, "smtp_host", None)
    if isinstance(smtp_host, str) and smtp_host:
        return smtp_host, port
    host = getattr(plugin, "host", None)
    if "host" in getattr(plugin, "template_tokens", {}) and isinstance(host, str) and host:
        return host, port
    return None


def _failure_reason(outcome: apprise.AppriseResult) -> str:
    """The last warning apprise logged for the attempt (apprise keeps secrets out of its logs)."""
    messages = [
        entry.message for entry in outcome.logs() if entry.level in ("WARNING", "ERROR", "CRITICAL")
    ]
    return messages[-1] if messages else f"notification not delivered ({outcome.status.name})"


class _Scope:
    """One send: its allow-list, the adapter apprise's sessions get, and the refusals seen (from
    any of apprise's threads, hence the lock)."""

    def __init__(self, allow: AllowList) -> None:
        self.allow = allow
        self.adapter = _VettingAdapter()
        self._refusals: list[str] = []
        self._lock = threading.Lock()

    def refuse(self, message: str) -> None:
        with self._lock:
            self._refusals.append(message)

    def first_refusal(self) -> str | None:
        with self._lock:
            return self._refusals[0] if self._refusals else None

    def adapter_for(self, url: str) -> BaseAdapter:
        parts = urlsplit(url)
        try:
            check_scheme(parts.scheme, parts.hostname or "")
        except DestinationRefused as exc:
            self.refuse(str(exc))
            raise requests.exceptions.InvalidSchema(str(exc)) from exc
        return self.adapter


_SCOPE: ContextVar[_Scope | None] = ContextVar("ferry_outbound_notify_scope", default=None)


class _GuardUnavailable(RuntimeError):
    """The requests hook is not in place, so a send would go out unchecked."""


class _SessionHook:
    """The one wrap of `requests.Session.get_adapter`, installed on first use and never removed
    (an apprise thread may outlive its send; it still carries the send's context)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._unwrapped: Callable[[requests.Session, str], BaseAdapter] | None = None

    def install(self) -> None:
        with self._lock:
            if requests.Session.get_adapter is _scoped_get_adapter:
                return
            if self._unwrapped is not None:
                raise _GuardUnavailable(
                    "requests.Session.get_adapter was replaced after Ferry wrapped it; "
                    "refusing to send notifications unchecked"
                )
            self._unwrapped = requests.Session.get_adapter
            requests.Session.get_adapter = _scoped_get_adapter  # type: ignore[method-assign,assignment]

    def unwrapped(self, session: requests.Session, url: str) -> BaseAdapter:
        if self._unwrapped is None:
            raise _GuardUnavailable("the requests hook was never installed")
        return self._unwrapped(session, url)


_HOOK = _SessionHook()


def _scoped_get_adapter(session: requests.Session, url: str) -> BaseAdapter:
    scope = _SCOPE.get()
    if scope is None:
        return _HOOK.unwrapped(session, url)
    return scope.adapter_for(url)


@contextmanager
def _checked_requests(allow: AllowList) -> Iterator[_Scope]:
    """Route every requests call made in this context (and contexts copied from it) through the
    vetting adapter while the block runs."""
    _HOOK.install()
    scope = _Scope(allow)
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)
        scope.adapter.close()


def _open_vetted_socket(conn: HTTPConnection) -> socket.socket:
    """urllib3's connect, with the destination vetted and the vetted address dialled."""
    scope = _SCOPE.get()
    if scope is None:
        # Only reachable from a connection created outside a send: never connect unchecked.
        raise NewConnectionError(conn, "refusing a notification connection outside its send")
    try:
        addresses = check_destination(conn.host, conn.port, scope.allow)
    except DestinationRefused as exc:
        scope.refuse(str(exc))
        raise NewConnectionError(conn, str(exc)) from exc
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    failure: OSError | None = None
    for address in addresses:
        try:
            return urllib3_connection.create_connection(
                (str(address), conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except OSError as exc:
            failure = exc
    if isinstance(failure, TimeoutError):
        raise ConnectTimeoutError(conn, f"connection to {conn.host} timed out") from failure
    raise NewConnectionError(conn, f"failed to connect to {conn.host}: {failure}") from failure


class _VettedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _open_vetted_socket(self)


class _VettedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _open_vetted_socket(self)


class _VettedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _VettedHTTPConnection


class _VettedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _VettedHTTPSConnection


class _VettingAdapter(HTTPAdapter):
    """requests' adapter with vetted connections and no proxies."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _VettedHTTPConnectionPool,
            "https": _VettedHTTPSConnectionPool,
        }

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        # requests adds the proxy's credentials on redirects; without a proxy they would go to
        # the target.
        request.headers.pop("Proxy-Authorization", None)
        return super().send(
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=None
        )
