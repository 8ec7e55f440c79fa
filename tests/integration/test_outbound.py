"""The outbound checks against real sockets: loopback HTTP(S) servers started here stand in for
git providers and notification targets. Nothing here contacts a public address: where a public
answer is needed, a stand-in resolver supplies it and the connect step is intercepted."""

from __future__ import annotations

import http.server
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
import requests
from urllib3.util import connection as urllib3_connection

from ferry.outbound.http import (
    AllowList,
    DestinationRefused,
    ResponseTooLarge,
    read_limited,
    safe_client,
)
from ferry.outbound.notify import send_notification
from tests.tls import tls_for

WAIT_SECONDS = 10.0
REAL_GETADDRINFO = socket.getaddrinfo


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


class Receiver:
    """A loopback HTTP server in a thread that records what reaches it and answers per path."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.received: list[Received] = []
        self.replies: dict[str, Reply] = {}
        self.arrived = threading.Event()
        self.hold: threading.Event | None = None
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                receiver.received.append(
                    Received(self.command, self.path, dict(self.headers), self.rfile.read(length))
                )
                receiver.arrived.set()
                if receiver.hold is not None:
                    receiver.hold.wait(WAIT_SECONDS)
                reply = receiver.replies.get(self.path, Reply())
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        self.server = Server((host, 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.host = host
        self.port: int = self.server.server_address[1]
        # A short poll interval only makes shutdown() return sooner.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WAIT_SECONDS)


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Receiver:
        receiver = Receiver(host, tls)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture
def receiver(start_receiver: Callable[..., Receiver]) -> Receiver:
    return start_receiver()


class ScriptedResolver:
    """Stands in for socket.getaddrinfo: answers `name` from a script (one list of addresses per
    lookup, the last repeated), everything else from the real resolver; counts lookups."""

    def __init__(self, name: str, script: list[list[str]]) -> None:
        self.name = name
        self.script = script
        self.lookups = 0

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != self.name:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        answer = self.script[min(self.lookups, len(self.script) - 1)]
        self.lookups += 1
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (address, int(port or 0)),
            )
            for address in answer
        ]


# --- the httpx client --------------------------------------------------------------------------


def test_safe_client_loopback_without_allow_list_refused(receiver: Receiver) -> None:
    with safe_client(allow=[]) as client, pytest.raises(DestinationRefused) as caught:
        client.get(receiver.url())
    assert "127.0.0.1 (loopback)" in str(caught.value)
    assert receiver.received == []


def test_safe_client_loopback_allowed_succeeds(receiver: Receiver) -> None:
    with safe_client(allow=["127.0.0.0/8"]) as client:
        response = client.get(receiver.url("/repo.git/info/refs"))
    assert response.status_code == 200
    assert [r.path for r in receiver.received] == ["/repo.git/info/refs"]


def test_safe_client_env_allow_list_used_by_default(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_OUTBOUND_ALLOW", "127.0.0.1/32")
    with safe_client() as client:
        assert client.get(receiver.url()).status_code == 200


def test_safe_client_redirect_to_ipv6_loopback_refused_at_hop(
    start_receiver: Callable[..., Receiver],
) -> None:
    target = start_receiver("::1")
    origin = start_receiver()
    origin.replies["/start"] = Reply(302, {"Location": target.url("/landed")})
    with safe_client(allow=["127.0.0.1/32"]) as client, pytest.raises(DestinationRefused) as caught:
        client.get(origin.url("/start"))
    assert "::1 (loopback)" in str(caught.value)
    assert [r.path for r in origin.received] == ["/start"]
    assert target.received == []


def test_safe_client_redirect_to_other_loopback_address_refused_at_hop(
    start_receiver: Callable[..., Receiver],
) -> None:
    target = start_receiver("127.0.0.2")
    origin = start_receiver()
    origin.replies["/start"] = Reply(307, {"Location": target.url("/landed")})
    with safe_client(allow=["127.0.0.1/32"]) as client, pytest.raises(DestinationRefused) as caught:
        client.post(origin.url("/start"), content=b"payload")
    assert "127.0.0.2 (loopback)" in str(caught.value)
    assert target.received == []


def test_safe_client_redirect_to_metadata_refused_before_connect(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialled: list[str] = []
    connect = httpcore.SyncBackend.connect_tcp

    def recording_connect(self: httpcore.SyncBackend, host: str, *args: Any, **kw: Any) -> Any:
        dialled.append(host)
        return connect(self, host, *args, **kw)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", recording_connect)
    receiver.replies["/"] = Reply(302, {"Location": "http://169.254.169.254/latest/meta-data/"})
    with safe_client(allow=["127.0.0.1/32"]) as client, pytest.raises(DestinationRefused) as caught:
        client.get(receiver.url())
    assert "169.254.169.254 (cloud metadata)" in str(caught.value)
    assert dialled == ["127.0.0.1"]


def test_safe_client_redirect_within_allowed_followed(
    start_receiver: Callable[..., Receiver],
) -> None:
    target = start_receiver("127.0.0.2")
    origin = start_receiver()
    origin.replies["/start"] = Reply(302, {"Location": target.url("/landed")})
    with safe_client(allow=["127.0.0.0/8"]) as client:
        response = client.get(origin.url("/start"))
    assert response.status_code == 200
    assert [r.path for r in target.received] == ["/landed"]


def test_safe_client_redirect_to_file_scheme_refused(receiver: Receiver) -> None:
    receiver.replies["/"] = Reply(302, {"Location": "file:///etc/passwd"})
    with safe_client(allow=["127.0.0.0/8"]) as client, pytest.raises(DestinationRefused):
        client.get(receiver.url())


def test_safe_client_rebinding_name_connects_to_vetted_public_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The classic rebinding: public for the check, loopback for a second lookup. The connection
    # must go to the checked address (intercepted here: nothing public is contacted), and the
    # name must be resolved only once.
    resolver = ScriptedResolver("rebind.test", [["1.1.1.1"], ["127.0.0.1"]])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    dialled: list[tuple[str, int]] = []

    def intercepted(self: httpcore.SyncBackend, host: str, port: int, *args: Any, **kw: Any) -> Any:
        dialled.append((host, port))
        raise httpcore.ConnectError("intercepted by the test")

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", intercepted)
    with safe_client(allow=[]) as client, pytest.raises(httpx.ConnectError):
        client.get("http://rebind.test:8080/")
    assert dialled == [("1.1.1.1", 8080)]
    assert resolver.lookups == 1


def test_safe_client_rebinding_name_keeps_host_header_on_vetted_address(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Allowed first answer (where the server listens), a second answer nothing listens on: the
    # request arrives only if the vetted answer was dialled, and with the name as Host.
    resolver = ScriptedResolver("pinned.test", [["127.0.0.1"], ["127.0.0.3"]])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with safe_client(allow=["127.0.0.0/8"]) as client:
        response = client.get(f"http://pinned.test:{receiver.port}/x")
    assert response.status_code == 200
    assert receiver.received[0].headers["Host"] == f"pinned.test:{receiver.port}"
    assert resolver.lookups == 1


def test_safe_client_name_resolving_to_loopback_refused(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", ScriptedResolver("evil.test", [["127.0.0.1"]]))
    with safe_client(allow=[]) as client, pytest.raises(DestinationRefused) as caught:
        client.get(f"http://evil.test:{receiver.port}/")
    assert "127.0.0.1 (loopback) for evil.test" in str(caught.value)
    assert receiver.received == []


def test_safe_client_tls_to_vetted_address_verifies_certificate_for_name(
    start_receiver: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server_tls, ca_file = tls_for("pinned.test", tmp_path)
    receiver = start_receiver(tls=server_tls)
    monkeypatch.setattr(socket, "getaddrinfo", ScriptedResolver("pinned.test", [["127.0.0.1"]]))
    trust = ssl.create_default_context(cafile=str(ca_file))
    with safe_client(allow=["127.0.0.1/32"], verify=trust) as client:
        response = client.get(f"https://pinned.test:{receiver.port}/secure")
    assert response.status_code == 200
    with (
        safe_client(allow=["127.0.0.1/32"], verify=trust) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"https://127.0.0.1:{receiver.port}/secure")


def test_read_limited_body_over_limit_raises(receiver: Receiver) -> None:
    receiver.replies["/big"] = Reply(body=b"x" * 5000)
    receiver.replies["/small"] = Reply(body=b"y" * 10)
    with safe_client(allow=["127.0.0.1/32"]) as client:
        with client.stream("GET", receiver.url("/small")) as response:
            assert read_limited(response, 100) == b"y" * 10
        with (
            client.stream("GET", receiver.url("/big")) as response,
            pytest.raises(ResponseTooLarge),
        ):
            read_limited(response, 100)


# --- apprise notifications ---------------------------------------------------------------------


def test_send_notification_json_allowed_delivers_post(receiver: Receiver) -> None:
    url = f"json://127.0.0.1:{receiver.port}/ferry/hook"
    result = send_notification(url, "Deploy finished", "web@abc123 is synced", allow=["127.0.0.1"])
    assert result.ok, result.error
    assert result.error is None
    [delivery] = receiver.received
    assert (delivery.method, delivery.path) == ("POST", "/ferry/hook")
    payload = json.loads(delivery.body)
    assert payload["title"] == "Deploy finished"
    assert payload["message"] == "web@abc123 is synced"


def test_send_notification_json_without_allow_list_refused_nothing_sent(
    receiver: Receiver,
) -> None:
    result = send_notification(f"json://127.0.0.1:{receiver.port}/hook", "t", "b", allow=[])
    assert not result.ok
    assert result.error is not None
    assert "127.0.0.1 (loopback)" in result.error
    assert receiver.received == []


def test_send_notification_redirect_to_refused_address_refused_at_hop(
    start_receiver: Callable[..., Receiver],
) -> None:
    target = start_receiver("::1")
    origin = start_receiver()
    origin.replies["/hook"] = Reply(307, {"Location": target.url("/stolen")})
    result = send_notification(
        f"json://127.0.0.1:{origin.port}/hook", "t", "b", allow=["127.0.0.1/32"]
    )
    assert not result.ok
    assert result.error is not None
    assert "::1 (loopback)" in result.error
    assert [r.path for r in origin.received] == ["/hook"]
    assert target.received == []


def test_send_notification_redirect_to_non_http_scheme_refused(receiver: Receiver) -> None:
    receiver.replies["/hook"] = Reply(307, {"Location": "ftp://127.0.0.1/x"})
    result = send_notification(
        f"json://127.0.0.1:{receiver.port}/hook", "t", "b", allow=["127.0.0.1/32"]
    )
    assert not result.ok
    assert result.error is not None
    assert "only http and https" in result.error


def test_send_notification_rebinding_name_dials_only_vetted_address(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Public while Ferry checks (the pre-check and the connection's own check), loopback after.
    resolver = ScriptedResolver("hook.test", [["1.1.1.1"], ["1.1.1.1"], ["127.0.0.1"]])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    dialled: list[tuple[str, int]] = []
    real_create_connection = urllib3_connection.create_connection

    def intercepted(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        if address[1] != receiver.port:  # other threads of the process (e.g. a local stack)
            return real_create_connection(address, *args, **kwargs)
        dialled.append(address)
        raise ConnectionRefusedError("intercepted by the test")

    monkeypatch.setattr(urllib3_connection, "create_connection", intercepted)
    result = send_notification(f"json://hook.test:{receiver.port}/hook", "t", "b", allow=[])
    assert not result.ok
    assert dialled == [("1.1.1.1", receiver.port)]
    assert resolver.lookups == 2
    assert receiver.received == []


def test_send_notification_name_resolving_to_metadata_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", ScriptedResolver("meta.test", [["169.254.169.254"]]))
    result = send_notification("jsons://meta.test/latest", "t", "b", allow=[])
    assert not result.ok
    assert result.error is not None
    assert "169.254.169.254 (cloud metadata) for meta.test" in result.error


def test_send_notification_tls_to_vetted_address_verifies_certificate_for_name(
    start_receiver: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server_tls, ca_file = tls_for("pinned.test", tmp_path)
    receiver = start_receiver(tls=server_tls)
    monkeypatch.setattr(socket, "getaddrinfo", ScriptedResolver("pinned.test", [["127.0.0.1"]]))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    result = send_notification(
        f"jsons://pinned.test:{receiver.port}/hook", "t", "b", allow=["127.0.0.1/32"]
    )
    assert result.ok, result.error
    assert receiver.received[0].headers["Host"] == f"pinned.test:{receiver.port}"


def test_send_notification_unreachable_target_reports_failure(receiver: Receiver) -> None:
    port = receiver.port
    receiver.close()
    result = send_notification(f"json://127.0.0.1:{port}/hook", "t", "b", allow=["127.0.0.1"])
    assert not result.ok
    assert result.error


def test_send_notification_error_status_reports_failure(receiver: Receiver) -> None:
    receiver.replies["/hook"] = Reply(500, body=b"boom")
    result = send_notification(
        f"json://127.0.0.1:{receiver.port}/hook", "t", "b", allow=["127.0.0.1"]
    )
    assert not result.ok
    assert result.error is not None
    assert "500" in result.error


def test_send_notification_other_threads_requests_unaffected_during_send(
    start_receiver: Callable[..., Receiver],
) -> None:
    # While a send is in flight (held open by its receiver), plain requests elsewhere in the
    # process reach loopback as before: the checks apply only to the send's own context.
    target = start_receiver()
    target.hold = threading.Event()
    bystander = start_receiver()
    results: list[Any] = []
    sender = threading.Thread(
        target=lambda: results.append(
            send_notification(f"json://127.0.0.1:{target.port}/hook", "t", "b", allow=["127.0.0.1"])
        )
    )
    sender.start()
    assert target.arrived.wait(WAIT_SECONDS)
    assert requests.get(bystander.url("/plain"), timeout=WAIT_SECONDS).status_code == 200
    target.hold.set()
    sender.join(WAIT_SECONDS)
    assert results and results[0].ok
    assert [r.path for r in bystander.received] == ["/plain"]


def test_send_notification_hook_leaves_plain_requests_unchecked_afterwards(
    receiver: Receiver,
) -> None:
    send_notification(f"json://127.0.0.1:{receiver.port}/hook", "t", "b", allow=[])
    assert requests.get(receiver.url("/plain"), timeout=WAIT_SECONDS).status_code == 200


def test_allow_list_object_accepted_by_both_paths(receiver: Receiver) -> None:
    allow = AllowList(networks=(ipaddress.ip_network("127.0.0.0/8"),))
    with safe_client(allow=allow) as client:
        assert client.get(receiver.url()).status_code == 200
    assert send_notification(f"json://127.0.0.1:{receiver.port}/h", "t", "b", allow=allow).ok


def test_send_notification_hook_replaced_fails_closed(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"json://127.0.0.1:{receiver.port}/hook"
    assert send_notification(url, "t", "b", allow=["127.0.0.1"]).ok

    def someone_elses_get_adapter(session: requests.Session, url: str) -> Any:
        return requests.adapters.HTTPAdapter()

    monkeypatch.setattr(requests.Session, "get_adapter", someone_elses_get_adapter)
    result = send_notification(url, "t", "b", allow=["127.0.0.1"])
    assert not result.ok
    assert result.error is not None
    assert "refusing to send notifications unchecked" in result.error
    assert len(receiver.received) == 1
