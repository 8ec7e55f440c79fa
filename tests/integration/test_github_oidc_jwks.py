"""The OIDC verifier against a real issuer on loopback: discovery and JWKS served over HTTP and
fetched through the SSRF-checked client, with 127.0.0.0/8 allowed explicitly."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ferry.errors import PermanentError, TransientError
from ferry.sync.github_oidc import OidcVerifier, http_json_fetcher
from tests.oidc_issuer import DISCOVERY_PATH, FIRST_KEY, JWKS_PATH, ROTATED_KEY, Issuer, public_jwk

AUDIENCE = "https://ferry.example.com"
LOOPBACK = ["127.0.0.0/8"]
SHA = "9f2c4e1b7a3d5c6e8f0a1b2c3d4e5f6a7b8c9d0e"


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
