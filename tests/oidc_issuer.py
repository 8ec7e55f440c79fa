"""A loopback OpenID Connect issuer (discovery + JWKS over real HTTP) and GitHub Actions tokens
signed by it, for the tests of the Actions callback and of the OIDC verifier."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections import Counter
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

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


def actions_token(issuer: Issuer, audience: str, sha: str, **overrides: Any) -> str:
    """An Actions job token for a push to main of octo-org/stack; `overrides` change claims."""
    now = int(time.time())
    claims = {
        "sub": "repo:octo-org/stack:ref:refs/heads/main",
        "aud": audience,
        "ref": "refs/heads/main",
        "ref_type": "branch",
        "sha": sha,
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
    } | overrides
    return jwt.encode(claims, FIRST_KEY, algorithm="RS256", headers={"kid": "first"})
