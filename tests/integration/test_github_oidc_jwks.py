"""The OIDC verifier against a real issuer on loopback: discovery and JWKS served over HTTP and
fetched through the SSRF-checked client, with 127.0.0.0/8 allowed explicitly."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ferry.errors import PermanentError, TransientError
from ferry.triggers.github_oidc import OidcVerifier, http_json_fetcher

AUDIENCE = "https://ferry.example.com"
LOOPBACK = ["127.0.0.0/8"]
SHA = "9f2c4e1b7a3d5c6e8f0a1b2c3d4e5f6a7b8c9d0e"
JWKS_PATH = "/.well-known/jwks"
DISCOVERY_PATH = "/.well-known/openid-configuration"

FIRST_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROTATED_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return jwk | {"kid": kid, "use": "sig", "alg": "RS256"}


class Issuer:
    """A loopback OIDC issuer in a thread: serves discovery and JWKS, counts requests per path."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.keys = [public_jwk(FIRST_KEY, "first")]
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                issuer.requests[self.path] += 1
                if self.path == DISCOVERY_PATH:
                    document: object = {
                        "issuer": issuer.url,
                        "jwks_uri": issuer.url + JWKS_PATH,
                        "response_types_supported": ["id_token"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }
                elif self.path == JWKS_PATH:
                    document = {"keys": issuer.keys}
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    started = Issuer()
    yield started
    started.close()


def token(issuer: Issuer, key: rsa.RSAPrivateKey = FIRST_KEY, kid: str = "first") -> str:
    now = int(time.time())
    claims = {
        "sub": "repo:octo-org/stack:ref:refs/heads/main",
        "aud": AUDIENCE,
        "ref": "refs/heads/main",
        "ref_type": "branch",
        "sha": SHA,
        "repository": "octo-org/stack",
        "repository_id": "712345678",
        "repository_owner": "octo-org",
        "actor": "mona",
        "event_name": "push",
        "workflow_ref": "octo-org/stack/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_ref": "octo-org/stack/.github/workflows/deploy.yml@refs/heads/main",
        "iss": issuer.url,
        "nbf": now - 5,
        "iat": now - 5,
        "exp": now + 300,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def test_oidc_verifier_loopback_issuer_verifies_and_caches_keys(issuer: Issuer) -> None:
    verifier = OidcVerifier(issuer.url, None, AUDIENCE, fetch=http_json_fetcher(allow=LOOPBACK))
    for _ in range(3):
        assert verifier.verify(token(issuer)).repository == "octo-org/stack"
    assert issuer.requests == Counter({DISCOVERY_PATH: 1, JWKS_PATH: 1})


def test_oidc_verifier_rotated_key_refetches_jwks_once(issuer: Issuer) -> None:
    verifier = OidcVerifier(issuer.url, None, AUDIENCE, fetch=http_json_fetcher(allow=LOOPBACK))
    verifier.verify(token(issuer))
    issuer.keys = [public_jwk(ROTATED_KEY, "rotated"), public_jwk(FIRST_KEY, "first")]
    for _ in range(2):
        assert verifier.verify(token(issuer, ROTATED_KEY, "rotated")).sha == SHA
    assert verifier.verify(token(issuer)).sha == SHA
    assert issuer.requests == Counter({DISCOVERY_PATH: 1, JWKS_PATH: 2})


def test_oidc_verifier_jwks_url_override_skips_discovery(issuer: Issuer) -> None:
    verifier = OidcVerifier(
        issuer.url, issuer.url + JWKS_PATH, AUDIENCE, fetch=http_json_fetcher(allow=LOOPBACK)
    )
    verifier.verify(token(issuer))
    assert issuer.requests == Counter({JWKS_PATH: 1})


def test_oidc_verifier_loopback_not_allowed_raises_permanent_error(issuer: Issuer) -> None:
    verifier = OidcVerifier(issuer.url, None, AUDIENCE, fetch=http_json_fetcher(allow=[]))
    with pytest.raises(PermanentError, match="not in the outbound allow-list"):
        verifier.verify(token(issuer))
    assert issuer.requests == Counter()


def test_oidc_verifier_missing_jwks_raises_transient_error(issuer: Issuer) -> None:
    verifier = OidcVerifier(
        issuer.url, issuer.url + "/nowhere", AUDIENCE, fetch=http_json_fetcher(allow=LOOPBACK)
    )
    with pytest.raises(TransientError, match="404"):
        verifier.verify(token(issuer))
