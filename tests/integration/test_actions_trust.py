"""How far a GitHub Actions token is trusted: only repositories that opted in, only on the GitHub
the issuer speaks for, and a tag run only on the branches its allow-list names."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferry.local.stack import LocalStack
from ferry.store.tables import RepositoryRow
from tests.helpers import commit, compose
from tests.oidc_issuer import Issuer, actions_token


def _git(repo: Path, *arguments: str) -> None:
    subprocess.run(["git", "-C", str(repo), *arguments], check=True, capture_output=True)


def _repository(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/repositories", json={"sync_type": "manual", **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _run(stack: LocalStack, token: str) -> httpx.Response:
    return httpx.post(
        f"{stack.api_url}/api/v1/github-actions", headers={"Authorization": f"Bearer {token}"}
    )


def _token(issuer: Issuer, stack: LocalStack, sha: str, full_name: str, **claims: Any) -> str:
    return actions_token(
        issuer,
        stack.api_url,
        sha,
        repository=full_name,
        repository_id=str(int.from_bytes(hashlib.sha256(full_name.encode()).digest()[:4])),
        sub=f"repo:{full_name}:ref:{claims.get('ref', 'refs/heads/main')}",
        **claims,
    )


def test_actions_run_for_repository_that_did_not_opt_in_answers_403(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str, actions_issuer: Issuer
) -> None:
    head = commit(git_repo, "app/compose.yaml", compose())
    full_name = f"octo-org/off-{unique}"
    created = _repository(api, url=f"file://{git_repo}", github_repository=full_name)
    assert created["github_actions"] is False

    refused = _run(stack, _token(actions_issuer, stack, head, full_name))

    assert refused.status_code == 403, refused.text
    assert "github_actions" in refused.json()["detail"]
    switched = api.patch(f"/repositories/{created['id']}", json={"github_actions": True})
    assert switched.status_code == 200 and switched.json()["github_actions"] is True
    assert _run(stack, _token(actions_issuer, stack, head, full_name)).status_code == 202


@pytest.mark.parametrize(
    "url",
    [
        "https://gitlab.example.com/{name}.git",
        "git@gitea.example.com:{name}.git",
        "https://github.com.example.net/{name}",
    ],
)
def test_actions_token_does_not_match_a_same_named_repository_on_another_host(
    stack: LocalStack, api: httpx.Client, unique: str, actions_issuer: Issuer, url: str
) -> None:
    full_name = f"acme/app-{unique}"
    created = _repository(api, url=url.format(name=full_name), github_actions=True)

    refused = _run(stack, _token(actions_issuer, stack, "a" * 40, full_name))

    assert refused.status_code == 403, refused.text
    stored = RepositoryRow.get(created["id"], consistent_read=True)
    assert stored.github_repository_id is None


def test_actions_tag_run_syncs_only_allowed_branches_containing_it(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str, actions_issuer: Issuer
) -> None:
    tagged = commit(git_repo, "app/compose.yaml", compose())
    _git(git_repo, "branch", "develop")
    _git(git_repo, "tag", "v1")
    full_name = f"octo-org/tags-{unique}"
    _repository(
        api,
        url=f"file://{git_repo}",
        github_actions=True,
        github_repository=full_name,
        actions_branches=["main"],
    )

    accepted = _run(
        stack,
        _token(actions_issuer, stack, tagged, full_name, ref="refs/tags/v1", ref_type="tag"),
    )

    assert accepted.status_code == 202, accepted.text
    branches = [api.get(f"/jobs/{job}").json()["branch"] for job in accepted.json()["job_ids"]]
    assert branches == ["main"]


def test_actions_still_reach_repositories_stored_before_the_opt_in(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str, actions_issuer: Issuer
) -> None:
    head = commit(git_repo, "app/compose.yaml", compose())
    full_name = f"octo-org/legacy-{unique}"
    created = _repository(api, url=f"file://{git_repo}", github_repository=full_name)
    # A row written by an earlier version has no github_actions attribute at all.
    RepositoryRow(id=created["id"]).update(actions=[RepositoryRow.github_actions.remove()])

    assert api.get(f"/repositories/{created['id']}").json()["github_actions"] is True
    assert _run(stack, _token(actions_issuer, stack, head, full_name)).status_code == 202
