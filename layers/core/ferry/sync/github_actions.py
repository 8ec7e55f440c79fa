"""The GitHub Actions trigger: a workflow calls POST /api/v1/github-actions with its OIDC token.

The token proves the repository, ref and commit the run is for (sync/github_oidc.py). Only
repositories that opted in (`github_actions`) are candidates, and only those on the GitHub the
issuer speaks for: a repository names its GitHub repository explicitly (`github_repository`),
or its URL is on that host (github.com, or the Enterprise Server of the configured issuer). Among
them it is matched by GitHub's numeric id once known (recorded on the first verified run), else
by owner/repo; its optional allow-lists of branches and workflows apply, to a tag's branches too.
"""

from __future__ import annotations

import json
from functools import cache

from ferry.domain.messages import SyncJob
from ferry.domain.models import Repository, Trigger
from ferry.errors import Forbidden, GitError, Unauthorized, Unprocessable
from ferry.settings import get_settings
from ferry.store.ratelimit import check_rate
from ferry.store.repositories import list_repositories, record_github_repository_id
from ferry.sync.github_oidc import (
    ActionsClaims,
    OidcVerifier,
    check_policy,
    full_name_from_url,
    github_host,
    matches_repository,
)
from ferry.sync.manual import start_whole_sync
from ferry.sync.queue import enqueue_sync_job
from ferry.sync.resolvers import open_repository
from ferry.sync.webhook import count_refused


@cache
def _verifier(audience: str) -> OidcVerifier:
    # One per process and audience: its key cache outlives single requests.
    settings = get_settings()
    return OidcVerifier(
        settings.github_oidc_issuer, settings.github_oidc_jwks_url or None, audience
    )


def _parse_body(body: bytes) -> bool:
    """`{"sync_repo": true}` syncs the whole repository; default: the run's own branch."""
    if not body.strip():
        return False
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise Unprocessable('body must be JSON, e.g. {"sync_repo": true}') from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("sync_repo", False), bool):
        raise Unprocessable('body must be a JSON object like {"sync_repo": true}')
    return bool(parsed.get("sync_repo", False))


def _repositories_for(claims: ActionsClaims) -> list[Repository]:
    host = github_host(get_settings().github_oidc_issuer)
    return [
        r
        for r in list_repositories()
        if r.github_actions
        and (full_name := r.github_repository or full_name_from_url(r.url, host)) is not None
        and matches_repository(
            claims, github_repository_id=r.github_repository_id, full_name=full_name
        )
    ]


def _tag_branches(repository: Repository, claims: ActionsClaims) -> list[str] | None:
    finder = getattr(open_repository(repository), "branches_containing", None)
    if claims.tag is None or finder is None:
        return None
    try:
        return list(finder(claims.sha))
    except GitError:
        return []


def receive_actions_run(
    token: str, body: bytes, *, audience: str, source: str, limit: int
) -> list[str]:
    """Verify the run and queue its sync(s); returns the job ids.

    A token that does not verify counts against `source`'s refused requests (`limit` a minute,
    then RateLimited); a verified run counts against its GitHub repository's own runs, so a flood
    of forged tokens never keeps a real run out.
    """
    sync_repo = _parse_body(body)
    try:
        claims = _verifier(audience.rstrip("/")).verify(token)
    except Unauthorized:
        count_refused(source, limit)
        raise
    check_rate(
        f"actions-for#{claims.repository_id}",
        limit,
        what=f"GitHub Actions runs of {claims.repository}",
    )
    repositories = _repositories_for(claims)
    if not repositories:
        raise Forbidden(
            f"no Ferry repository with github_actions on is registered for {claims.repository}"
        )
    job_ids: list[str] = []
    for repository in repositories:
        tag_branches = _tag_branches(repository, claims)
        check_policy(
            claims,
            allowed_branches=repository.actions_branches,
            allowed_workflows=repository.actions_workflows,
            tag_branches=tag_branches,
        )
        if repository.github_repository_id is None:
            record_github_repository_id(repository.id, claims.repository_id)
        base = {
            "repository_id": repository.id,
            "trigger": Trigger.GITHUB_ACTIONS,
            "actor": f"github-actions:{claims.actor}" if claims.actor else "github-actions",
        }
        if sync_repo:
            job_ids.append(start_whole_sync(SyncJob(**base)))
            continue
        if claims.branch is not None:
            jobs = [SyncJob(**base, branch=claims.branch, commit=claims.sha)]
        else:
            if not tag_branches:
                raise Unprocessable(
                    f"tag {claims.tag} ({claims.sha[:12]}) is on no branch of "
                    f"{claims.repository} that Ferry can find; nothing to sync"
                )
            # check_policy let the run through because one of the tag's branches is allowed;
            # only the allowed ones sync.
            allowed = repository.actions_branches
            jobs = [
                SyncJob(**base, branch=branch)
                for branch in tag_branches
                if allowed is None or branch in allowed
            ]
        job_ids.extend(enqueue_sync_job(job) for job in jobs)
    return job_ids
