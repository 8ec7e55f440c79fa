"""The agent's calls to the Ferry API: a private CA named the standard way is trusted, and the agent
token is what every call carries."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry_agent.control_plane import ControlPlane, ControlPlaneError
from tests.tls import tls_for

SESSION = {"agent_id": "agt_tls", "name": "tls", "queue_url": "q", "region": "us-east-1"}


@pytest.fixture
def private_ca_api(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS stand-in for the agent session route, with a certificate for `localhost` from a
    throwaway CA; yields its URL and the CA file."""
    context, ca_file = tls_for("localhost", tmp_path)

    class Session(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(SESSION).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Session)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://localhost:{server.server_port}", ca_file
    finally:
        server.shutdown()
        server.server_close()


def test_control_plane_trusts_the_ca_named_by_ssl_cert_file(
    private_ca_api: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = private_ca_api
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))

    session = ControlPlane(url, "agt_tls.secret").session()

    assert session.agent_id == "agt_tls"


def test_control_plane_refuses_an_api_whose_ca_it_does_not_trust(
    private_ca_api: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ca_file = private_ca_api
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(ControlPlaneError, match="cannot reach the Ferry API"):
        ControlPlane(url, "agt_tls.secret").session()


def test_control_plane_sends_its_token_even_with_a_netrc_entry_for_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []

    class Heartbeat(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Heartbeat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password other-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    try:
        ControlPlane(f"http://127.0.0.1:{server.server_port}", "agt_tls.secret").heartbeat()
    finally:
        server.shutdown()
        server.server_close()

    assert seen == ["Bearer agt_tls.secret"]
