"""Which adapter reads a repository: a local path in place, any other git URL through a cached
bare clone, a hosted provider through its REST API."""

from __future__ import annotations

from urllib.parse import urlsplit

from ferry.domain.models import CredentialKind, Provider, Repository, RepositoryCredentials
from ferry.errors import GitError, InvalidInput
from ferry.git.source import GitSource, UnavailableSource, local_path_of

# The adapters (and the outbound HTTP client, httpx) are imported when first needed: a Lambda
# that never reads a repository over the network does not pay for paramiko, httpx and the REST
# clients at cold start.


def unsupported_reason(url: str, provider: Provider) -> str | None:
    """Why Ferry cannot read this repository, or None when it can (checked before it is stored):
    a URL it cannot parse, or one whose host is an address the outbound rules refuse."""
    if provider is Provider.GIT:
        if local_path_of(url) is not None:
            return None
        from ferry.git.remote import parse_remote_url

        try:
            host = parse_remote_url(url).host
        except GitError as exc:
            return str(exc)
    else:
        from ferry.git.providers.factory import parse_repository_url, provider_source

        try:
            provider_source(provider.value, url, None).close()  # parses; opens no connection
            host = urlsplit(url.strip()).hostname or parse_repository_url(url).netloc
        except GitError as exc:
            return str(exc)
    from ferry.outbound.http import check_literal_destination

    try:
        check_literal_destination(host)
    except InvalidInput as exc:
        return str(exc)
    return None


def open_source(
    repository: Repository,
    credentials: RepositoryCredentials | None,
    cache_dir: str,
    *,
    timeout: float | None = None,
) -> GitSource:
    """The git source for a repository record; reads fail with the reason when it is unreadable.

    Local paths are read in place; other git URLs (https, ssh) through a bare clone cached under
    `cache_dir`; GitHub, GitLab, Gitea/Forgejo and Azure DevOps through their REST APIs, unless
    the repository's credential is a deploy key (then as git over SSH). `timeout` (seconds per
    network step) overrides the adapter's default, for callers that must answer quickly.
    """
    path = local_path_of(repository.url)
    if repository.provider is Provider.GIT and path is not None:
        from ferry.git.local import LocalGitSource

        return LocalGitSource(path)
    try:
        if repository.provider is Provider.GIT or (
            credentials is not None and credentials.kind is CredentialKind.SSH_KEY
        ):
            from ferry.git.remote import RemoteGitSource

            if timeout is None:
                return RemoteGitSource(repository.url, credentials, cache_dir)
            return RemoteGitSource(repository.url, credentials, cache_dir, timeout=timeout)
        from ferry.git.providers.factory import provider_source

        if timeout is None:
            return provider_source(repository.provider.value, repository.url, credentials)
        return provider_source(
            repository.provider.value, repository.url, credentials, timeout=timeout
        )
    except GitError as exc:
        return UnavailableSource(str(exc))
