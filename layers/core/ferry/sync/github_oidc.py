"""GitHub Actions OIDC tokens: a workflow proves which repository, ref and commit it runs for.

A job asks GitHub for a token whose audience is Ferry's public API URL and sends it as Bearer. The
token is an RS256 JWT signed by the issuer (`https://token.actions.githubusercontent.com`, or a
GitHub Enterprise Server's `https://<host>/_services/token`); its keys come from the issuer's
OpenID discovery document (`jwks_uri`), fetched through the SSRF-checked outbound client and
cached. A token signed with a key the cache does not know triggers one refetch (GitHub rotates
keys), at most once per `refetch_interval_seconds`, so a flood of made-up key ids cannot turn the
API into a load generator against the issuer.

Refused with Unauthorized: a malformed token, any algorithm but RS256 (`none`, and HS256 signed
with the public key, the classic confusion attack), an unknown key, a bad signature, another
issuer, an audience other than the API's URL (GitHub's default `https://github.com/<owner>` too:
such a token is meant for any service the owner uses), `exp` passed or `nbf` still ahead beyond
`leeway_seconds`. Refused with Forbidden: runs for `pull_request` and `pull_request_target`
events, which run code from outside the repository's branches.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
import jwt

from ferry.errors import Forbidden, InvalidInput, PermanentError, TransientError, Unauthorized
from ferry.git.source import is_full_sha
from ferry.outbound.http import AllowSpec, read_limited, safe_client

DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"
DEFAULT_CACHE_SECONDS = 3600.0
DEFAULT_LEEWAY_SECONDS = 60.0
DEFAULT_REFETCH_INTERVAL_SECONDS = 60.0
PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_target"})
MAX_TOKEN_LENGTH = 16 * 1024
MAX_DOCUMENT_BYTES = 256 * 1024

_ALGORITHM = "RS256"
_GITHUB_DEFAULT_AUDIENCE = "https://github.com/"

JsonFetch = Callable[[str], object]
"""Fetches a URL and returns its parsed JSON; raises TransientError or PermanentError."""


@dataclass(frozen=True)
class ActionsClaims:
    """The claims of a verified GitHub Actions token that Ferry acts on."""

    repository: str
    repository_id: str
    repository_owner: str
    ref: str
    ref_type: str | None
    sha: str
    event_name: str
    workflow_ref: str | None
    job_workflow_ref: str | None
    sub: str
    actor: str | None

    @property
    def branch(self) -> str | None:
        """The branch the run is for, None when `ref` is not a branch."""
        return _ref_name(self.ref, "refs/heads/")

    @property
    def tag(self) -> str | None:
        """The tag the run is for, None when `ref` is not a tag."""
        return _ref_name(self.ref, "refs/tags/")


def _ref_name(ref: str, prefix: str) -> str | None:
    if not ref.startswith(prefix):
        return None
    return ref[len(prefix) :] or None


def http_json_fetcher(
    *,
    allow: AllowSpec = None,
    timeout: float = 5.0,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> JsonFetch:
    """A JsonFetch over `safe_client` (allow-list: `allow`, default FERRY_OUTBOUND_ALLOW).

    Network failures and error answers raise TransientError; a refused destination or an
    oversized answer raises PermanentError (retrying will not change either).
    """

    def fetch(url: str) -> object:
        try:
            with (
                safe_client(allow=allow, timeout=timeout) as client,
                client.stream("GET", url, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != httpx.codes.OK:
                    raise TransientError(f"{url} answered HTTP {response.status_code}")
                body = read_limited(response, max_bytes)
        except InvalidInput as exc:
            raise PermanentError(f"cannot fetch {url}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise TransientError(f"cannot fetch {url}: {exc}") from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise TransientError(f"{url} did not answer JSON") from exc

    return fetch


class OidcVerifier:
    """Verifies GitHub Actions OIDC tokens for one audience; thread-safe, keys cached.

    `jwks_url` skips discovery (FERRY_GITHUB_OIDC_JWKS_URL); `fetch` defaults to
    `http_json_fetcher()`; `clock` (monotonic seconds) only drives the cache.
    """

    def __init__(
        self,
        issuer: str,
        jwks_url: str | None,
        audience: str,
        *,
        fetch: JsonFetch | None = None,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        leeway_seconds: float = DEFAULT_LEEWAY_SECONDS,
        refetch_interval_seconds: float = DEFAULT_REFETCH_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not audience.strip():
            raise PermanentError(
                "the API's public URL is not configured: it is the audience GitHub Actions "
                "tokens must be requested for"
            )
        if _normalize_url(audience).startswith(_GITHUB_DEFAULT_AUDIENCE):
            raise PermanentError(
                "the audience must be the API's own URL, not GitHub's default audience"
            )
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self._jwks_url = jwks_url or None
        self._fetch = fetch or http_json_fetcher()
        self._cache_seconds = cache_seconds
        self._leeway = leeway_seconds
        self._refetch_interval = refetch_interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._discovered: tuple[str, float] | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_fetched_at: float | None = None
        self._last_forced_refetch: float | None = None

    def verify(self, token: str) -> ActionsClaims:
        """The claims of `token` once signature, issuer, audience and times hold.

        Raises Unauthorized for any token that does not verify, Forbidden for a pull request run,
        TransientError / PermanentError when the signing keys cannot be fetched.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed token") from exc
        if header.get("alg") != _ALGORITHM:
            raise Unauthorized(f"token must be signed with {_ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token names no signing key")
        key = self._signing_key(kid)
        claims = self._decode(token, key)
        self._check_audience(claims.get("aud"))
        return _actions_claims(claims)

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key=key.key,
                algorithms=[_ALGORITHM],
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": ["iss", "aud", "exp", "iat", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("token not valid yet") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized(f"token not issued by {self.issuer}") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthorized("signature mismatch") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the {exc.claim} claim") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token") from exc

    def _check_audience(self, aud: object) -> None:
        # One audience, exactly ours: a token minted for several services is refused too.
        if isinstance(aud, str) and _normalize_url(aud) == _normalize_url(self.audience):
            return
        if isinstance(aud, str) and _normalize_url(aud).startswith(_GITHUB_DEFAULT_AUDIENCE):
            raise Unauthorized(
                f"token has GitHub's default audience; request it with audience {self.audience}"
            )
        raise Unauthorized(f"token audience is not {self.audience}")

    def _signing_key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            now = self._clock()
            refreshed = False
            if self._keys_fetched_at is None or now - self._keys_fetched_at >= self._cache_seconds:
                self._refresh_keys(now)
                refreshed = True
            key = self._keys.get(kid)
            if key is None and not refreshed and self._may_force_refetch(now):
                self._last_forced_refetch = now
                self._refresh_keys(now)
                key = self._keys.get(kid)
            if key is None:
                raise Unauthorized("token signed with an unknown key")
            return key

    def _may_force_refetch(self, now: float) -> bool:
        last = self._last_forced_refetch
        return last is None or now - last >= self._refetch_interval

    def _refresh_keys(self, now: float) -> None:
        url = self._jwks_uri(now)
        self._keys = _signing_keys(self._fetch(url), url)
        self._keys_fetched_at = now

    def _jwks_uri(self, now: float) -> str:
        if self._jwks_url is not None:
            return self._jwks_url
        if self._discovered is not None and now - self._discovered[1] < self._cache_seconds:
            return self._discovered[0]
        url = f"{self.issuer}/.well-known/openid-configuration"
        document = self._fetch(url)
        if not isinstance(document, dict):
            raise TransientError(f"{url} is not an OpenID configuration")
        if str(document.get("issuer", "")).rstrip("/") != self.issuer:
            raise PermanentError(f"{url} describes another issuer: {document.get('issuer')!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise TransientError(f"{url} names no jwks_uri")
        self._discovered = (jwks_uri, now)
        return jwks_uri


def _normalize_url(url: str) -> str:
    return url.strip().rstrip("/").lower() + "/"


def _signing_keys(document: object, url: str) -> dict[str, jwt.PyJWK]:
    """The RS256 signing keys of a JWKS document, by key id; keys of other kinds are skipped."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise TransientError(f"{url} is not a JSON Web Key Set")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use") == "enc":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("alg", _ALGORITHM) != _ALGORITHM:
            continue
        try:
            keys[kid] = jwt.PyJWK(entry, algorithm=_ALGORITHM)
        except jwt.PyJWTError:
            continue
    if not keys:
        raise TransientError(f"{url} holds no RS256 signing key")
    return keys


def _required(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise Unauthorized(f"not a GitHub Actions token: no {name} claim")
    return value


def _optional(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


def _actions_claims(claims: Mapping[str, Any]) -> ActionsClaims:
    event_name = _required(claims, "event_name")
    sub = _required(claims, "sub")
    if event_name in PULL_REQUEST_EVENTS or sub.endswith(":pull_request"):
        raise Forbidden(f"runs for {event_name} events cannot deploy")
    sha = _required(claims, "sha")
    if not is_full_sha(sha):
        raise Unauthorized("not a GitHub Actions token: sha is not a full commit SHA")
    return ActionsClaims(
        repository=_required(claims, "repository"),
        repository_id=_required(claims, "repository_id"),
        repository_owner=_required(claims, "repository_owner"),
        ref=_required(claims, "ref"),
        ref_type=_optional(claims, "ref_type"),
        sha=sha,
        event_name=event_name,
        workflow_ref=_optional(claims, "workflow_ref"),
        job_workflow_ref=_optional(claims, "job_workflow_ref"),
        sub=sub,
        actor=_optional(claims, "actor"),
    )


def matches_repository(
    claims: ActionsClaims, *, github_repository_id: str | None, full_name: str | None
) -> bool:
    """Whether the token's run belongs to a registered repository.

    Once the repository's numeric GitHub id is known only the id decides: a repository deleted
    and re-created under the same name by someone else must not inherit the deploy right.
    Before that, `owner/repo` case-insensitively (GitHub names are).
    """
    if github_repository_id:
        return claims.repository_id == str(github_repository_id)
    return full_name is not None and claims.repository.casefold() == full_name.strip().casefold()


def full_name_from_url(url: str, github_host: str) -> str | None:
    """`owner/repo` of a clone URL (https or scp-like ssh) on `github_host`, None when the URL is
    on another host or names no `owner/repo`: a GitLab or Gitea repository that happens to be
    called `acme/app` is not GitHub's `acme/app`."""
    text = url.strip()
    scp_like = "://" not in text and ":" in text
    if scp_like:
        host, path = text.split(":", 1)
        host = host.rpartition("@")[2]
    else:
        parsed = urlparse(text)
        host, path = parsed.hostname or "", parsed.path
    if host.lower() not in _hosts_of(github_host):
        return None
    parts = [part for part in path.strip("/").removesuffix(".git").split("/") if part]
    return "/".join(parts) if len(parts) == 2 else None


def github_host(issuer: str) -> str:
    """The GitHub host whose repositories an issuer's tokens speak for: github.com for GitHub's
    own issuer, the server itself for GitHub Enterprise Server (`https://<host>/_services/token`)."""
    if issuer.rstrip("/") == DEFAULT_ISSUER:
        return "github.com"
    return (urlparse(issuer).hostname or "").lower()


def _hosts_of(github_host: str) -> frozenset[str]:
    # github.com also serves git over SSH as ssh.github.com (port 443).
    if github_host == "github.com":
        return frozenset({"github.com", "www.github.com", "ssh.github.com"})
    return frozenset({github_host})


def check_policy(
    claims: ActionsClaims,
    *,
    allowed_branches: list[str] | None,
    allowed_workflows: list[str] | None,
    tag_branches: Iterable[str] | None = None,
) -> None:
    """Raise Forbidden unless the run's branch and workflow are allowed to deploy.

    None means no restriction, an empty list allows nothing. Branches are compared exactly; a
    run for a tag counts as a run for the branches containing the tag's commit, which the caller
    resolves with a provider and passes as `tag_branches` (without them the tag is refused).
    Workflows are `owner/repo/.github/workflows/file.yml`, optionally `@<ref>`, or the same path
    from `.github/` on for a workflow of the token's own repository; they are matched against
    `job_workflow_ref` (the reusable workflow actually running) and `workflow_ref` (the caller).
    The token's `sub` is not used: its format varies (`...:ref:refs/heads/main`,
    `...:environment:prod`, customised templates), while `ref` and the workflow claims do not.
    """
    if claims.event_name in PULL_REQUEST_EVENTS:
        raise Forbidden(f"runs for {claims.event_name} events cannot deploy")
    if allowed_branches is not None:
        _check_branch(claims, set(allowed_branches), tag_branches)
    if allowed_workflows is not None:
        refs = [ref for ref in (claims.job_workflow_ref, claims.workflow_ref) if ref]
        if not any(
            _workflow_matches(entry, ref, claims.repository)
            for entry in allowed_workflows
            for ref in refs
        ):
            shown = claims.job_workflow_ref or claims.workflow_ref or "unknown"
            raise Forbidden(f"workflow {shown} is not allowed to deploy")


def _check_branch(
    claims: ActionsClaims, allowed: set[str], tag_branches: Iterable[str] | None
) -> None:
    if claims.branch is not None:
        if claims.branch not in allowed:
            raise Forbidden(f"branch {claims.branch!r} is not allowed to deploy")
        return
    if claims.tag is None:
        raise Forbidden(f"ref {claims.ref!r} is neither a branch nor a tag")
    if tag_branches is None:
        raise Forbidden(f"tag {claims.tag!r} was not resolved to the branches containing it")
    if not allowed.intersection(tag_branches):
        raise Forbidden(f"tag {claims.tag!r} is on no branch allowed to deploy")


def _workflow_matches(entry: str, workflow_ref: str, repository: str) -> bool:
    want_path, has_ref, want_ref = entry.strip().partition("@")
    if want_path.startswith(".github/"):
        want_path = f"{repository}/{want_path}"
    path, _, ref = workflow_ref.partition("@")
    want_owner_repo, want_file = _split_workflow_path(want_path)
    owner_repo, file = _split_workflow_path(path)
    # Owner and repository names are case-insensitive on GitHub; file paths and refs are not.
    if want_owner_repo.casefold() != owner_repo.casefold() or want_file != file:
        return False
    return not has_ref or want_ref == ref


def _split_workflow_path(path: str) -> tuple[str, str]:
    parts = path.split("/", 2)
    if len(parts) < 3:
        return path, ""
    return f"{parts[0]}/{parts[1]}", parts[2]
