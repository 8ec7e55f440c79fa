"""Reading a repository for a sync, and the two commit resolvers the triggers use.

A resolver answers "which commit does this branch deploy?" and is called once per branch of a
sync (never once per application):
- `latest_commit`: the branch's head, from the repository itself (polling, manual, webhook: a
  delivery only says that a branch moved);
- `static_commit`: one named commit (a GitHub Actions run's `sha`), once it is known to exist.
"""

from __future__ import annotations

from collections.abc import Callable

from ferry.domain.models import CommitInfo, Repository
from ferry.errors import GitError
from ferry.git.open import open_source
from ferry.git.source import GitSource
from ferry.settings import get_settings
from ferry.store.repositories import get_credentials

Resolver = Callable[[str], CommitInfo]


def open_repository(repository: Repository, *, timeout: float | None = None) -> GitSource:
    """The git source for a repository record, with its stored credentials (`timeout`: seconds
    per network step, default the adapter's)."""
    credentials = get_credentials(repository.id) if repository.has_credentials else None
    return open_source(repository, credentials, get_settings().git_cache_dir, timeout=timeout)


def latest_commit(source: GitSource) -> Resolver:
    """Each branch resolves to its head."""
    return source.latest_commit


def static_commit(source: GitSource, sha: str) -> Resolver:
    """Each branch resolves to `sha`, once the repository is known to have it."""
    return lambda _branch: source.commit(sha)


def resolve_once(branches: set[str], resolve: Resolver) -> Resolver:
    """Resolve every branch now; the returned resolver answers from what was resolved, so what
    follows resolves nothing twice (and a branch that failed fails the same way again)."""
    resolved: dict[str, CommitInfo | GitError] = {}
    for branch in branches:
        try:
            resolved[branch] = resolve(branch)
        except GitError as exc:
            resolved[branch] = exc

    def cached(branch: str) -> CommitInfo:
        outcome = resolved[branch]
        if isinstance(outcome, GitError):
            raise outcome
        return outcome

    return cached
