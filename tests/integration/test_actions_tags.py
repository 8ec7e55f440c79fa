"""GitHub Actions runs for tags: a tag is synced on the branches that contain its commit, and a
tag on no branch is refused with the reason instead of a 202 that starts nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from ferry.local.stack import LocalStack
from tests.helpers import (
    commit,
    compose,
    deployed_once,
    wait_for_idle_sync,
    wait_for_status,
)
from tests.oidc_issuer import Issuer, actions_token


def _git(repo: Path, *arguments: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *arguments], check=True, capture_output=True, text=True
    ).stdout.strip()


def _tag_token(actions_issuer: Issuer, audience: str, full_name: str, tag: str, sha: str) -> str:
    return actions_token(
        actions_issuer,
        audience,
        sha,
        ref=f"refs/tags/{tag}",
        ref_type="tag",
        sub=f"repo:{full_name}:ref:refs/tags/{tag}",
        repository=full_name,
        repository_id=str(int(full_name.rsplit("-", 1)[-1], 16)),  # numeric, per repository
    )


def test_actions_tag_runs_sync_containing_branches_and_refuse_branchless_tags(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str, actions_issuer: Issuer
) -> None:
    full_name = f"octo-org/tags-{unique}"
    first = commit(git_repo, "app/compose.yaml", compose())
    created = api.post(
        "/repositories",
        json={
            "url": f"file://{git_repo}",
            "sync_type": "manual",
            "github_actions": True,
            "github_repository": full_name,
        },
    ).json()
    application, scripted = deployed_once(api, created["id"], unique, commit=first)
    url = f"{stack.api_url}/api/v1/github-actions"

    released = commit(git_repo, "app/compose.yaml", compose(greeting="v1"))
    _git(git_repo, "tag", "v1")
    token = _tag_token(actions_issuer, stack.api_url, full_name, "v1", released)
    on_main = httpx.post(url, headers={"Authorization": f"Bearer {token}"})
    assert on_main.status_code == 202, on_main.text
    assert len(on_main.json()["job_ids"]) == 1
    message = scripted.take()
    assert message.request.commit == released
    scripted.succeed(message)
    wait_for_status(api, application["id"], "synced", commit=released)
    wait_for_idle_sync(created["id"])

    # A tag whose commit no branch contains (its branch was deleted).
    _git(git_repo, "checkout", "-q", "-b", f"topic-{unique}")
    stray = commit(git_repo, "app/compose.yaml", compose(greeting="stray"))
    _git(git_repo, "tag", "stray")
    _git(git_repo, "checkout", "-q", "main")
    _git(git_repo, "branch", "-q", "-D", f"topic-{unique}")
    token = _tag_token(actions_issuer, stack.api_url, full_name, "stray", stray)

    refused = httpx.post(url, headers={"Authorization": f"Bearer {token}"})

    assert refused.status_code == 422, refused.text
    assert "tag stray" in refused.json()["detail"] and "no branch" in refused.json()["detail"]
    assert api.get(f"/applications/{application['id']}").json()["commit"] == released
