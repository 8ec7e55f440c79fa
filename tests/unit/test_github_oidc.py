"""GitHub Actions OIDC tokens: an RSA key made here signs tokens shaped like GitHub's, and the
verifier reads its discovery document and JWKS from memory (the HTTP path is in
tests/integration/test_github_oidc_jwks.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ferry.errors import Forbidden, PermanentError, TransientError, Unauthorized
from ferry.sync.github_oidc import (
    DEFAULT_ISSUER,
    ActionsClaims,
    OidcVerifier,
    check_policy,
    full_name_from_url,
    github_host,
    matches_repository,
)

AUDIENCE = "https://ferry.example.com"
DISCOVERY_URL = f"{DEFAULT_ISSUER}/.well-known/openid-configuration"
JWKS_URL = f"{DEFAULT_ISSUER}/.well-known/jwks"
SHA = "9f2c4e1b7a3d5c6e8f0a1b2c3d4e5f6a7b8c9d0e"
KID = "cc413527-173f-5a05-976e-9c52b1d7b431"
OTHER_KID = "1F2AB83404C08EC9EA0BB99DAED02186B091DBF4"

PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return jwk | {"kid": kid, "use": "sig", "alg": "RS256"}


def github_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "jti": "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "sub": "repo:octo-org/stack:ref:refs/heads/main",
        "aud": AUDIENCE,
        "ref": "refs/heads/main",
        "sha": SHA,
        "repository": "octo-org/stack",
        "repository_owner": "octo-org",
        "repository_owner_id": "65",
        "repository_visibility": "private",
        "repository_id": "712345678",
        "actor_id": "583231",
        "actor": "mona",
        "run_id": "9876543210",
        "run_number": "42",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
        "workflow": "Deploy",
        "head_ref": "",
        "base_ref": "",
        "event_name": "push",
        "ref_type": "branch",
        "ref_protected": "true",
        "workflow_ref": "octo-org/stack/.github/workflows/deploy.yml@refs/heads/main",
        "workflow_sha": SHA,
        "job_workflow_ref": "octo-org/stack/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_sha": SHA,
        "iss": DEFAULT_ISSUER,
        "nbf": now - 5,
        "exp": now + 300,
        "iat": now - 5,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def sign(claims: dict[str, Any], key: rsa.RSAPrivateKey = PRIVATE_KEY, kid: str = KID) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"


@dataclass
class Documents:
    """The issuer's discovery document and JWKS, served from memory; counts every fetch."""

    keys: list[dict[str, Any]] = field(default_factory=lambda: [public_jwk(PRIVATE_KEY, KID)])
    fetched: Counter[str] = field(default_factory=Counter)

    def fetch(self, url: str) -> object:
        self.fetched[url] += 1
        if url == DISCOVERY_URL:
            return {
                "issuer": DEFAULT_ISSUER,
                "jwks_uri": JWKS_URL,
                "subject_types_supported": ["public", "pairwise"],
                "response_types_supported": ["id_token"],
                "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid"],
            }
        if url == JWKS_URL:
            return {"keys": self.keys}
        raise TransientError(f"{url} answered HTTP 404")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def documents() -> Documents:
    return Documents()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(documents: Documents, clock: Clock) -> OidcVerifier:
    return OidcVerifier(DEFAULT_ISSUER, None, AUDIENCE, fetch=documents.fetch, clock=clock)


def test_verify_good_token_returns_claims(verifier: OidcVerifier) -> None:
    claims = verifier.verify(sign(github_claims()))
    assert claims == ActionsClaims(
        repository="octo-org/stack",
        repository_id="712345678",
        repository_owner="octo-org",
        ref="refs/heads/main",
        ref_type="branch",
        sha=SHA,
        event_name="push",
        workflow_ref="octo-org/stack/.github/workflows/deploy.yml@refs/heads/main",
        job_workflow_ref="octo-org/stack/.github/workflows/deploy.yml@refs/heads/main",
        sub="repo:octo-org/stack:ref:refs/heads/main",
        actor="mona",
    )
    assert (claims.branch, claims.tag) == ("main", None)


def test_verify_environment_sub_returns_claims(verifier: OidcVerifier) -> None:
    token = sign(github_claims(sub="repo:octo-org/stack:environment:prod", environment="prod"))
    assert verifier.verify(token).sub == "repo:octo-org/stack:environment:prod"


def test_verify_audience_with_trailing_slash_returns_claims(verifier: OidcVerifier) -> None:
    assert verifier.verify(sign(github_claims(aud=AUDIENCE + "/"))).repository == "octo-org/stack"


def test_verify_tag_run_returns_tag(verifier: OidcVerifier) -> None:
    token = sign(github_claims(ref="refs/tags/v1.4.0", ref_type="tag"))
    claims = verifier.verify(token)
    assert (claims.branch, claims.tag) == (None, "v1.4.0")


def test_verify_keys_fetched_once_then_cached(
    verifier: OidcVerifier, documents: Documents, clock: Clock
) -> None:
    for _ in range(3):
        verifier.verify(sign(github_claims()))
        clock.now += 60
    assert documents.fetched == Counter({DISCOVERY_URL: 1, JWKS_URL: 1})


def test_verify_cache_expired_refetches_discovery_and_keys(
    verifier: OidcVerifier, documents: Documents, clock: Clock
) -> None:
    verifier.verify(sign(github_claims()))
    clock.now += 3600
    verifier.verify(sign(github_claims()))
    assert documents.fetched == Counter({DISCOVERY_URL: 2, JWKS_URL: 2})


def test_verify_jwks_url_given_skips_discovery(documents: Documents, clock: Clock) -> None:
    verifier = OidcVerifier(DEFAULT_ISSUER, JWKS_URL, AUDIENCE, fetch=documents.fetch, clock=clock)
    verifier.verify(sign(github_claims()))
    assert documents.fetched == Counter({JWKS_URL: 1})


def test_verify_wrong_audience_raises_unauthorized(verifier: OidcVerifier) -> None:
    token = sign(github_claims(aud="https://other.example.com"))
    with pytest.raises(Unauthorized, match="audience"):
        verifier.verify(token)


def test_verify_github_default_audience_raises_unauthorized(verifier: OidcVerifier) -> None:
    token = sign(github_claims(aud="https://github.com/octo-org"))
    with pytest.raises(Unauthorized, match="default audience"):
        verifier.verify(token)


def test_verify_audience_list_raises_unauthorized(verifier: OidcVerifier) -> None:
    token = sign(github_claims(aud=[AUDIENCE, "https://other.example.com"]))
    with pytest.raises(Unauthorized, match="audience"):
        verifier.verify(token)


@pytest.mark.parametrize("audience", ["https://github.com/octo-org", "", "  "])
def test_oidc_verifier_github_or_empty_audience_raises_permanent_error(
    audience: str, documents: Documents
) -> None:
    with pytest.raises(PermanentError):
        OidcVerifier(DEFAULT_ISSUER, None, audience, fetch=documents.fetch)


def test_verify_expired_raises_unauthorized(verifier: OidcVerifier) -> None:
    now = int(time.time())
    token = sign(github_claims(iat=now - 900, nbf=now - 900, exp=now - 61))
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token)


def test_verify_expired_within_skew_returns_claims(verifier: OidcVerifier) -> None:
    now = int(time.time())
    token = sign(github_claims(iat=now - 900, nbf=now - 900, exp=now - 30))
    assert verifier.verify(token).sha == SHA


def test_verify_nbf_beyond_skew_raises_unauthorized(verifier: OidcVerifier) -> None:
    now = int(time.time())
    token = sign(github_claims(nbf=now + 120, exp=now + 900))
    with pytest.raises(Unauthorized, match="not valid yet"):
        verifier.verify(token)


def test_verify_nbf_within_skew_returns_claims(verifier: OidcVerifier) -> None:
    now = int(time.time())
    token = sign(github_claims(nbf=now + 30, iat=now + 30, exp=now + 900))
    assert verifier.verify(token).sha == SHA


def test_verify_without_exp_raises_unauthorized(verifier: OidcVerifier) -> None:
    claims = github_claims()
    del claims["exp"]
    with pytest.raises(Unauthorized, match="exp"):
        verifier.verify(sign(claims))


def test_verify_wrong_issuer_raises_unauthorized(verifier: OidcVerifier) -> None:
    token = sign(github_claims(iss="https://token.actions.example.com"))
    with pytest.raises(Unauthorized, match="not issued by"):
        verifier.verify(token)


def test_verify_unknown_kid_refetches_once_then_raises_unauthorized(
    verifier: OidcVerifier, documents: Documents, clock: Clock
) -> None:
    verifier.verify(sign(github_claims()))
    with pytest.raises(Unauthorized, match="unknown key"):
        verifier.verify(sign(github_claims(), OTHER_KEY, OTHER_KID))
    assert documents.fetched == Counter({DISCOVERY_URL: 1, JWKS_URL: 2})


def test_verify_unknown_kids_in_a_row_refetch_at_most_once_per_interval(
    verifier: OidcVerifier, documents: Documents, clock: Clock
) -> None:
    verifier.verify(sign(github_claims()))
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        with pytest.raises(Unauthorized, match="unknown key"):
            verifier.verify(sign(github_claims(), OTHER_KEY, kid))
    assert documents.fetched[JWKS_URL] == 2
    clock.now += 60
    with pytest.raises(Unauthorized, match="unknown key"):
        verifier.verify(sign(github_claims(), OTHER_KEY, "made-up-4"))
    assert documents.fetched[JWKS_URL] == 3


def test_verify_rotated_key_refetches_and_returns_claims(
    verifier: OidcVerifier, documents: Documents
) -> None:
    verifier.verify(sign(github_claims()))
    documents.keys = [public_jwk(OTHER_KEY, OTHER_KID), public_jwk(PRIVATE_KEY, KID)]
    assert verifier.verify(sign(github_claims(), OTHER_KEY, OTHER_KID)).sha == SHA
    assert documents.fetched[JWKS_URL] == 2


def test_verify_key_from_another_kid_raises_unauthorized(verifier: OidcVerifier) -> None:
    with pytest.raises(Unauthorized, match="signature mismatch"):
        verifier.verify(sign(github_claims(), OTHER_KEY, KID))


def test_verify_tampered_payload_raises_unauthorized(verifier: OidcVerifier) -> None:
    header, _payload, signature = sign(github_claims()).split(".")
    forged = b64url(json.dumps(github_claims(repository="octo-org/other")).encode())
    with pytest.raises(Unauthorized, match="signature mismatch"):
        verifier.verify(f"{header}.{forged}.{signature}")


def test_verify_tampered_signature_raises_unauthorized(verifier: OidcVerifier) -> None:
    header, payload, signature = sign(github_claims()).split(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    with pytest.raises(Unauthorized):
        verifier.verify(f"{header}.{payload}.{flipped}")


def test_verify_alg_none_raises_unauthorized(verifier: OidcVerifier) -> None:
    token = unsigned_token({"alg": "none", "typ": "JWT", "kid": KID}, github_claims()) + "."
    with pytest.raises(Unauthorized, match="RS256"):
        verifier.verify(token)


def test_verify_hs256_signed_with_public_key_raises_unauthorized(verifier: OidcVerifier) -> None:
    pem = PRIVATE_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = unsigned_token({"alg": "HS256", "typ": "JWT", "kid": KID}, github_claims())
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(Unauthorized, match="RS256"):
        verifier.verify(f"{signing_input}.{b64url(mac)}")


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "x" * 20000])
def test_verify_malformed_token_raises_unauthorized(verifier: OidcVerifier, token: str) -> None:
    with pytest.raises(Unauthorized):
        verifier.verify(token)


def test_verify_without_kid_raises_unauthorized(verifier: OidcVerifier) -> None:
    token = jwt.encode(github_claims(), PRIVATE_KEY, algorithm="RS256")
    with pytest.raises(Unauthorized, match="no signing key"):
        verifier.verify(token)


@pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
def test_verify_pull_request_run_raises_forbidden(verifier: OidcVerifier, event: str) -> None:
    token = sign(
        github_claims(
            event_name=event,
            ref="refs/pull/7/merge",
            sub="repo:octo-org/stack:pull_request",
            head_ref="feature",
            base_ref="main",
        )
    )
    with pytest.raises(Forbidden, match=event):
        verifier.verify(token)


def test_verify_token_without_actions_claims_raises_unauthorized(verifier: OidcVerifier) -> None:
    claims = github_claims()
    del claims["repository_id"]
    with pytest.raises(Unauthorized, match="repository_id"):
        verifier.verify(sign(claims))


def test_verify_short_sha_claim_raises_unauthorized(verifier: OidcVerifier) -> None:
    with pytest.raises(Unauthorized, match="sha"):
        verifier.verify(sign(github_claims(sha=SHA[:7])))


def test_verify_discovery_unreachable_raises_transient_error(documents: Documents) -> None:
    verifier = OidcVerifier(
        "https://ghes.example.com/_services/token", None, AUDIENCE, fetch=documents.fetch
    )
    with pytest.raises(TransientError, match="404"):
        verifier.verify(sign(github_claims()))


def test_verify_discovery_for_another_issuer_raises_permanent_error() -> None:
    def wrong_issuer(url: str) -> object:
        return {"issuer": "https://evil.example.com", "jwks_uri": JWKS_URL}

    verifier = OidcVerifier(DEFAULT_ISSUER, None, AUDIENCE, fetch=wrong_issuer)
    with pytest.raises(PermanentError, match="another issuer"):
        verifier.verify(sign(github_claims()))


def test_verify_jwks_without_rsa_keys_raises_transient_error(documents: Documents) -> None:
    documents.keys = [{"kty": "oct", "kid": KID, "k": "c2VjcmV0"}]
    verifier = OidcVerifier(DEFAULT_ISSUER, JWKS_URL, AUDIENCE, fetch=documents.fetch)
    with pytest.raises(TransientError, match="no RS256 signing key"):
        verifier.verify(sign(github_claims()))


# check_policy


def claims_of(**overrides: Any) -> ActionsClaims:
    values: dict[str, Any] = {
        "repository": "octo-org/stack",
        "repository_id": "712345678",
        "repository_owner": "octo-org",
        "ref": "refs/heads/main",
        "ref_type": "branch",
        "sha": SHA,
        "event_name": "push",
        "workflow_ref": "octo-org/stack/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_ref": "octo-org/stack/.github/workflows/deploy.yml@refs/heads/main",
        "sub": "repo:octo-org/stack:ref:refs/heads/main",
        "actor": "mona",
    }
    return ActionsClaims(**(values | overrides))


def test_check_policy_no_lists_allows_any_run() -> None:
    check_policy(claims_of(ref="refs/heads/wip"), allowed_branches=None, allowed_workflows=None)


@pytest.mark.parametrize(
    "sub", ["repo:octo-org/stack:ref:refs/heads/main", "repo:octo-org/stack:environment:prod"]
)
def test_check_policy_allowed_branch_either_sub_format_passes(sub: str) -> None:
    check_policy(claims_of(sub=sub), allowed_branches=["main"], allowed_workflows=None)


@pytest.mark.parametrize(
    "sub", ["repo:octo-org/stack:ref:refs/heads/dev", "repo:octo-org/stack:environment:prod"]
)
def test_check_policy_other_branch_either_sub_format_raises_forbidden(sub: str) -> None:
    with pytest.raises(Forbidden, match="'dev' is not allowed"):
        check_policy(
            claims_of(ref="refs/heads/dev", sub=sub),
            allowed_branches=["main", "release/1.0"],
            allowed_workflows=None,
        )


def test_check_policy_empty_branch_list_raises_forbidden() -> None:
    with pytest.raises(Forbidden):
        check_policy(claims_of(), allowed_branches=[], allowed_workflows=None)


def test_check_policy_tag_on_allowed_branch_passes() -> None:
    claims = claims_of(ref="refs/tags/v1.4.0", ref_type="tag")
    check_policy(
        claims, allowed_branches=["main"], allowed_workflows=None, tag_branches=["dev", "main"]
    )


def test_check_policy_tag_on_other_branches_raises_forbidden() -> None:
    claims = claims_of(ref="refs/tags/v1.4.0", ref_type="tag")
    with pytest.raises(Forbidden, match="no branch allowed"):
        check_policy(claims, allowed_branches=["main"], allowed_workflows=None, tag_branches=[])


def test_check_policy_tag_not_resolved_raises_forbidden() -> None:
    claims = claims_of(ref="refs/tags/v1.4.0", ref_type="tag")
    with pytest.raises(Forbidden, match="not resolved"):
        check_policy(claims, allowed_branches=["main"], allowed_workflows=None)


def test_check_policy_pull_request_ref_raises_forbidden() -> None:
    with pytest.raises(Forbidden):
        check_policy(
            claims_of(ref="refs/pull/7/merge"), allowed_branches=["main"], allowed_workflows=None
        )


@pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
def test_check_policy_pull_request_event_raises_forbidden(event: str) -> None:
    with pytest.raises(Forbidden):
        check_policy(claims_of(event_name=event), allowed_branches=None, allowed_workflows=None)


@pytest.mark.parametrize(
    "entry",
    [
        "octo-org/stack/.github/workflows/deploy.yml",
        "Octo-Org/Stack/.github/workflows/deploy.yml",
        "octo-org/stack/.github/workflows/deploy.yml@refs/heads/main",
        ".github/workflows/deploy.yml",
        ".github/workflows/deploy.yml@refs/heads/main",
    ],
)
def test_check_policy_allowed_workflow_passes(entry: str) -> None:
    check_policy(claims_of(), allowed_branches=None, allowed_workflows=[entry])


@pytest.mark.parametrize(
    "entry",
    [
        "octo-org/stack/.github/workflows/release.yml",
        "octo-org/stack/.github/workflows/Deploy.yml",
        "octo-org/stack/.github/workflows/deploy.yml@refs/heads/dev",
        "octo-org/other/.github/workflows/deploy.yml",
        ".github/workflows/release.yml",
    ],
)
def test_check_policy_other_workflow_raises_forbidden(entry: str) -> None:
    with pytest.raises(Forbidden, match="workflow"):
        check_policy(claims_of(), allowed_branches=None, allowed_workflows=[entry])


def test_check_policy_reusable_workflow_matches_job_workflow_ref() -> None:
    claims = claims_of(
        workflow_ref="octo-org/stack/.github/workflows/ci.yml@refs/heads/main",
        job_workflow_ref="octo-org/platform/.github/workflows/deploy.yml@refs/tags/v2",
        sub="repo:octo-org/stack:environment:prod",
    )
    check_policy(
        claims,
        allowed_branches=["main"],
        allowed_workflows=["octo-org/platform/.github/workflows/deploy.yml@refs/tags/v2"],
    )
    check_policy(claims, allowed_branches=None, allowed_workflows=[".github/workflows/ci.yml"])


def test_check_policy_workflow_claims_missing_raises_forbidden() -> None:
    claims = claims_of(workflow_ref=None, job_workflow_ref=None)
    with pytest.raises(Forbidden, match="unknown"):
        check_policy(claims, allowed_branches=None, allowed_workflows=[".github/workflows/x.yml"])


# matches_repository, full_name_from_url


def test_matches_repository_known_id_decides_alone() -> None:
    claims = claims_of()
    assert matches_repository(claims, github_repository_id="712345678", full_name="x/y")
    assert not matches_repository(claims, github_repository_id="999", full_name="octo-org/stack")


def test_matches_repository_unknown_id_compares_name_case_insensitively() -> None:
    claims = claims_of()
    assert matches_repository(claims, github_repository_id=None, full_name="Octo-Org/STACK")
    assert not matches_repository(claims, github_repository_id=None, full_name="octo-org/stack2")
    assert not matches_repository(claims, github_repository_id=None, full_name=None)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/octo-org/stack.git", "octo-org/stack"),
        ("https://github.com/octo-org/stack", "octo-org/stack"),
        ("git@github.com:Octo-Org/stack.git", "Octo-Org/stack"),
        ("ssh://git@github.com/octo-org/stack.git", "octo-org/stack"),
        ("https://github.com/octo-org", None),
    ],
)
def test_full_name_from_url_github_urls_return_owner_repo(url: str, expected: str | None) -> None:
    assert full_name_from_url(url, "github.com") == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://gitlab.com/octo-org/stack.git",
        "https://gitea.example.com/octo-org/stack",
        "git@gitlab.com:octo-org/stack.git",
        "ssh://git@bitbucket.org/octo-org/stack.git",
        "file:///srv/octo-org/stack",
        "https://github.com.evil.example/octo-org/stack",
    ],
)
def test_full_name_from_url_other_hosts_name_no_github_repository(url: str) -> None:
    assert full_name_from_url(url, "github.com") is None


def test_full_name_from_url_enterprise_server_binds_to_its_own_host() -> None:
    host = github_host("https://ghes.example.com/_services/token")
    assert host == "ghes.example.com"
    assert full_name_from_url("https://ghes.example.com/ops/stack.git", host) == "ops/stack"
    assert full_name_from_url("https://github.com/ops/stack.git", host) is None
    assert github_host("https://token.actions.githubusercontent.com/") == "github.com"
