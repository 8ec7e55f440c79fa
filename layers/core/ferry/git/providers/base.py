"""What the REST adapters share: one SSRF-safe client per source, provider errors translated into
domain errors, and pagination that never follows a link off the API's own origin."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from ferry.domain.models import CommitInfo, CredentialKind, RepositoryCredentials
from ferry.errors import GitError, TransientError
from ferry.git.http import (
    ProviderRateLimited,
    is_rate_limited,
    provider_message,
    retry_after_seconds,
)
from ferry.git.source import (
    check_sha,
    decode_text,
)
from ferry.outbound.http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    AllowSpec,
    DestinationRefused,
    ResponseTooLarge,
    read_limited,
    safe_client,
)

DEFAULT_TIMEOUT_SECONDS = 15.0
USER_AGENT = "ferry-gitops"
# The largest file a bundle read takes from a provider (answers are otherwise capped at 10 MiB);
# the bundle's own limits are checked by the caller.
BLOB_MAX_BYTES = 64 * 1024 * 1024

Params = Mapping[str, str | int]
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class ProviderNotFound(GitError):
    """The provider says the branch, commit, file or repository does not exist (or that the
    credentials cannot see it: GitHub and GitLab answer 404 for private repositories)."""


def commit_info(sha: object, message: object, provider: str) -> CommitInfo:
    """A CommitInfo from fields of a provider's answer, GitError when they are not strings."""
    if not isinstance(sha, str) or not isinstance(message, str):
        raise GitError(f"unexpected answer from {provider}: a commit without sha or message")
    return CommitInfo(sha=sha, message=message.strip())


def decode_base64(content: str, path: str) -> bytes:
    """Bytes from a base64 `content` field (GitHub and Gitea split it over lines)."""
    try:
        return base64.b64decode("".join(content.split()), validate=True)
    except ValueError:
        raise GitError(f"{path}: the provider sent content that is not valid base64") from None


def decode_base64_text(content: str, path: str) -> str:
    """Text from a base64 `content` field."""
    return decode_text(decode_base64(content, path), path)


def refuse_ssh_key(credentials: RepositoryCredentials | None, provider: str) -> None:
    """GitError for a deploy key: it opens git over SSH, never a provider's REST API."""
    if credentials is not None and credentials.kind is CredentialKind.SSH_KEY:
        raise GitError(
            f"an SSH deploy key cannot authenticate to the {provider} API: "
            "give the repository an access token, or use the generic git provider over SSH"
        )


class ApiClient:
    """HTTP to one provider's API root, through `safe_client`, with errors made domain errors:

    - the `missing` statuses (404 unless told) → ProviderNotFound with the caller's `missing`
      text;
    - 401 → GitError naming the credentials, 403 → GitError naming permissions;
    - rate limits (see `is_rate_limited`) → ProviderRateLimited with the wait;
    - 5xx, timeouts and network failures → TransientError;
    - any other 4xx, a refused destination or an oversized answer → GitError.
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        allow: AllowSpec = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        authenticated: bool,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._origin = httpx.URL(self.base_url).copy_with(path="/", query=None, fragment=None)
        self._timeout = timeout
        self._authenticated = authenticated
        self._http = safe_client(
            allow=allow,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, **headers},
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def url(self, path: str) -> str:
        """The absolute URL of an API path (already quoted by the caller)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def get(
        self,
        path_or_url: str,
        *,
        missing: str,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        missing_statuses: tuple[int, ...] = (404,),
        accept: tuple[int, ...] = (),
        max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> httpx.Response:
        """GET an API path (or an absolute URL on the API's origin) and return the response with
        its body (at most `max_bytes`) read when it succeeded or its status is in `accept`;
        other errors are translated as the class docstring says."""
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        self._check_origin(url)
        request = self._http.build_request("GET", url, params=params, headers=headers)
        try:
            response = self._http.send(request, stream=True)
            try:
                body = read_limited(response, max_bytes)
            finally:
                response.close()
        except DestinationRefused as exc:
            raise GitError(str(exc)) from exc
        except ResponseTooLarge as exc:
            raise GitError(f"{self.provider} answer too large: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"{self.provider} did not answer within {self._timeout:g} s"
            ) from exc
        except httpx.TooManyRedirects as exc:
            raise GitError(f"{self.provider} redirected too often ({exc})") from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"cannot reach {self.provider} at {request.url.host}: {exc}"
            ) from exc
        # The body is already decoded: rebuild the response without the headers that describe
        # the wire form, so httpx does not decode it twice.
        kept = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in _WIRE_HEADERS
        ]
        result = httpx.Response(response.status_code, headers=kept, content=body, request=request)
        if result.status_code not in accept:
            self._raise_for_status(result, missing, missing_statuses)
        return result

    def get_json(
        self,
        path_or_url: str,
        *,
        missing: str,
        params: Params | None = None,
        missing_statuses: tuple[int, ...] = (404,),
        max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> Any:
        """GET and parse a JSON answer; GitError when it is not JSON."""
        response = self.get(
            path_or_url,
            missing=missing,
            params=params,
            missing_statuses=missing_statuses,
            max_bytes=max_bytes,
        )
        return self.parse_json(response)

    def parse_json(self, response: httpx.Response) -> Any:
        """A response's JSON body, GitError when it is not JSON."""
        try:
            return json.loads(response.content)
        except ValueError:
            raise GitError(f"unexpected answer from {self.provider}: not JSON") from None

    def paginate(
        self,
        path: str,
        *,
        missing: str,
        params: Params | None = None,
        items: Callable[[Any], list[Any]] | None = None,
    ) -> Iterator[Any]:
        """Every item of a list endpoint, following `Link: <...>; rel="next"` (GitHub, GitLab,
        Gitea). `items` picks the list out of a page (default: the page is the list)."""
        url: str | None = self.url(path)
        page_params: Params | None = params
        while url is not None:
            response = self.get(url, missing=missing, params=page_params)
            page = self.parse_json(response)
            entries = items(page) if items is not None else page
            if not isinstance(entries, list):
                raise GitError(f"unexpected answer from {self.provider}: expected a list")
            yield from entries
            # The next link carries every query parameter itself.
            url = response.links.get("next", {}).get("url")
            page_params = None

    def _check_origin(self, url: str) -> None:
        # A next-page link is the provider's data: if it pointed at another host, following it
        # would hand that host our token.
        target = httpx.URL(url)
        if (target.scheme, target.host, target.port) != (
            self._origin.scheme,
            self._origin.host,
            self._origin.port,
        ):
            raise GitError(
                f"{self.provider} pointed to {target.scheme}://{target.host}, "
                f"outside its API at {self._origin.host}; not following"
            )

    def _raise_for_status(
        self, response: httpx.Response, missing: str, missing_statuses: tuple[int, ...]
    ) -> None:
        status = response.status_code
        if status < 400:
            return
        message = provider_message(response)
        if is_rate_limited(response):
            wait = retry_after_seconds(response)
            advice = f"; retry in {wait:.0f} s" if wait is not None else ""
            raise ProviderRateLimited(
                f"{self.provider} rate limit reached (HTTP {status}: {message}){advice}", wait
            )
        if status in missing_statuses:
            raise ProviderNotFound(f"{missing} ({self.provider} answered {status}: {message})")
        if status == 401:
            if self._authenticated:
                raise GitError(
                    f"{self.provider} rejected the repository's credentials "
                    f"(HTTP 401: {message}): check or renew the access token"
                )
            raise GitError(
                f"{self.provider} requires credentials (HTTP 401: {message}): "
                "give the repository an access token"
            )
        if status == 403:
            raise GitError(
                f"{self.provider} refused access (HTTP 403: {message}): the credentials lack "
                "permission to read this repository"
            )
        if status >= 500:
            raise TransientError(f"{self.provider} failed (HTTP {status}: {message}); try again")
        raise GitError(f"{self.provider} refused the request (HTTP {status}: {message})")


class ProviderRepository:
    """What every provider's source shares: one API client below the repository's own URL (SSH
    keys refused: these are REST APIs)."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        credentials: RepositoryCredentials | None,
        allow: AllowSpec,
        timeout: float,
    ) -> None:
        refuse_ssh_key(credentials, provider)
        self._api = ApiClient(
            provider=provider,
            base_url=base_url,
            headers=headers,
            allow=allow,
            timeout=timeout,
            authenticated=credentials is not None,
        )

    @property
    def api_url(self) -> str:
        """The API URL of the repository itself (every request goes below it)."""
        return self._api.base_url

    def close(self) -> None:
        """Release the HTTP connections."""
        self._api.close()


class HeadComparingRepository(ProviderRepository):
    """Providers with no "branches containing this commit" call (GitHub, Gitea): list the branch
    heads, then compare each head with the commit, one request per branch."""

    def commit(self, sha: str) -> CommitInfo:
        raise NotImplementedError

    def _branch_heads(self) -> dict[str, str]:
        """Branch name → head commit SHA, every branch."""
        raise NotImplementedError

    def _head_contains(self, head: str, sha: str) -> bool:
        """Whether the history of `head` includes `sha`."""
        raise NotImplementedError

    def contains(self, descendant: str, ancestor: str) -> bool:
        """One comparison of the two commits."""
        check_sha(descendant)
        check_sha(ancestor)
        return descendant == ancestor or self._head_contains(descendant, ancestor)

    def list_branches(self) -> list[str]:
        """Every branch name (`GET /branches`, paginated)."""
        return sorted(self._branch_heads())

    def branches_containing(self, sha: str) -> list[str]:
        """Branches whose history includes the commit (see the class docstring for the cost)."""
        self.commit(sha)
        return sorted(
            name
            for name, head in self._branch_heads().items()
            if head == sha or self._head_contains(head, sha)
        )
