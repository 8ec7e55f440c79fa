"""Webhook deliveries of every sender read into one result: real HMACs computed here over
payloads shaped like the ones GitHub, Gitea, Forgejo, GitLab and Azure DevOps send."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from ferry.errors import InvalidInput, Unauthorized
from ferry.sync.deliveries import (
    SIGNATURE_TOLERANCE_SECONDS,
    Ignored,
    Ping,
    Push,
    Sender,
    read_delivery,
    standard_webhooks_key,
)

SECRET = "8d5f1c0e6b0a4f3e9c7b2a1d0e9f8c7b"
SHA = "9f2c4e1b7a3d5c6e8f0a1b2c3d4e5f6a7b8c9d0e"
PARENT = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
TAG_OBJECT = "5c1e3a7f9b2d4c6e8a0b1c2d3e4f5a6b7c8d9e0f"
ZERO = "0" * 40
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
GITHUB_DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
GITLAB_UUID = "7a9d2c84-1f0b-4d6e-9a3c-2b8e5f1d0c47"
GITLAB_IDEMPOTENCY = "4b3e7f1c-92d5-4a8e-b6c0-1d2e3f4a5b6c"


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_headers(
    body: bytes, event: str = "push", secret: str = SECRET, form: bool = False
) -> dict[str, str]:
    return {
        "Host": "ferry.example.com",
        "User-Agent": "GitHub-Hookshot/5f2a1c3",
        "Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": GITHUB_DELIVERY,
        "X-GitHub-Hook-ID": "512345678",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-ID": "712345678",
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + hex_hmac(secret, body),
    }


def github_push(ref: str = "refs/heads/main", after: str = SHA, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "ref": ref,
        "before": PARENT,
        "after": after,
        "repository": {
            "id": 712345678,
            "node_id": "R_kgDOKnY2Tg",
            "name": "stack",
            "full_name": "octo-org/stack",
            "private": True,
            "owner": {"name": "octo-org", "login": "octo-org", "id": 9919},
            "html_url": "https://github.com/octo-org/stack",
            "clone_url": "https://github.com/octo-org/stack.git",
            "default_branch": "main",
        },
        "pusher": {"name": "mona", "email": "mona@example.com"},
        "sender": {"login": "mona", "id": 583231, "type": "User"},
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/octo-org/stack/compare/{PARENT[:12]}...{after[:12]}",
        "commits": [
            {
                "id": after,
                "tree_id": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
                "distinct": True,
                "message": "Bump web image to 1.27",
                "timestamp": "2026-01-01T00:00:00Z",
                "author": {"name": "Mona", "email": "mona@example.com", "username": "mona"},
                "added": [],
                "removed": [],
                "modified": ["compose.yaml"],
            }
        ],
        "head_commit": {"id": after, "message": "Bump web image to 1.27"},
    }
    payload.update(extra)
    return payload


def gitea_push(ref: str = "refs/heads/main", after: str = SHA) -> dict[str, Any]:
    return {
        "ref": ref,
        "before": PARENT,
        "after": after,
        "compare_url": f"https://git.example.com/ops/stack/compare/{PARENT}...{after}",
        "commits": [
            {
                "id": after,
                "message": "Bump web image to 1.27\n",
                "url": f"https://git.example.com/ops/stack/commit/{after}",
                "author": {"name": "Ops", "email": "ops@example.com", "username": "ops"},
                "timestamp": "2026-01-01T00:00:00Z",
                "added": [],
                "removed": [],
                "modified": ["compose.yaml"],
            }
        ],
        "total_commits": 1,
        "head_commit": {"id": after, "message": "Bump web image to 1.27\n"},
        "repository": {
            "id": 42,
            "owner": {"id": 3, "login": "ops", "username": "ops"},
            "name": "stack",
            "full_name": "ops/stack",
            "private": True,
            "clone_url": "https://git.example.com/ops/stack.git",
            "default_branch": "main",
        },
        "pusher": {"id": 3, "login": "ops", "username": "ops"},
        "sender": {"id": 3, "login": "ops", "username": "ops"},
    }


def gitea_headers(body: bytes, kind: str = "Gitea", event: str = "push") -> dict[str, str]:
    signature = hex_hmac(SECRET, body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Go-http-client/1.1",
        "X-Gitea-Delivery": "d6a43b7e-5f0c-4b7d-9a5e-2f3c1b0e8d71",
        "X-Gitea-Event": event,
        "X-Gitea-Event-Type": event,
        "X-Gitea-Signature": signature,
        "X-Gogs-Delivery": "d6a43b7e-5f0c-4b7d-9a5e-2f3c1b0e8d71",
        "X-Gogs-Event": event,
        "X-Gogs-Signature": signature,
        "X-GitHub-Delivery": "d6a43b7e-5f0c-4b7d-9a5e-2f3c1b0e8d71",
        "X-GitHub-Event": event,
        "X-Hub-Signature-256": "sha256=" + signature,
    }
    if kind == "Forgejo":
        headers |= {
            "X-Forgejo-Delivery": "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
            "X-Forgejo-Event": event,
            "X-Forgejo-Event-Type": event,
            "X-Forgejo-Signature": signature,
        }
    return headers


def gitlab_push(
    ref: str = "refs/heads/main",
    after: str = SHA,
    checkout_sha: str | None = SHA,
    kind: str = "push",
) -> dict[str, Any]:
    return {
        "object_kind": kind,
        "event_name": kind,
        "before": PARENT,
        "after": after,
        "ref": ref,
        "ref_protected": True,
        "checkout_sha": checkout_sha,
        "message": None,
        "user_id": 4,
        "user_name": "John Smith",
        "user_username": "jsmith",
        "project_id": 15,
        "project": {
            "id": 15,
            "name": "stack",
            "web_url": "https://gitlab.example.com/ops/stack",
            "git_http_url": "https://gitlab.example.com/ops/stack.git",
            "namespace": "ops",
            "path_with_namespace": "ops/stack",
            "default_branch": "main",
        },
        "commits": [
            {
                "id": checkout_sha or after,
                "message": "Bump web image to 1.27\n",
                "title": "Bump web image to 1.27",
                "timestamp": "2026-01-01T00:00:00+00:00",
                "author": {"name": "John Smith", "email": "[REDACTED]"},
                "added": [],
                "modified": ["compose.yaml"],
                "removed": [],
            }
        ],
        "total_commits_count": 1,
        "repository": {"name": "stack", "homepage": "https://gitlab.example.com/ops/stack"},
    }


def gitlab_headers(event: str = "Push Hook", token: str | None = SECRET) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/18.7.0",
        "X-Gitlab-Event": event,
        "X-Gitlab-Webhook-UUID": "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9",
        "X-Gitlab-Instance": "https://gitlab.example.com",
        "X-Gitlab-Event-UUID": GITLAB_UUID,
        "Idempotency-Key": GITLAB_IDEMPOTENCY,
    }
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return headers


SIGNING_KEY = bytes(range(32))
SIGNING_SECRET = "whsec_" + base64.b64encode(SIGNING_KEY).decode()


def standard_signature(key: bytes, message_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_gitlab_headers(
    body: bytes, *, key: bytes = SIGNING_KEY, timestamp: float = NOW, event: str = "Push Hook"
) -> dict[str, str]:
    stamp = str(int(timestamp))
    return gitlab_headers(event, token=None) | {
        "webhook-id": GITLAB_IDEMPOTENCY,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_signature(key, GITLAB_IDEMPOTENCY, stamp, body),
    }


def azure_push(updates: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "subscriptionId": "00000000-0000-0000-0000-000000000000",
        "notificationId": 7,
        "id": "03c164c2-8912-4d5e-8009-3707d5f83734",
        "eventType": "git.push",
        "publisherId": "tfs",
        "message": {"text": "Jamal Hartnett pushed updates to Fabrikam-Fiber-Git:main."},
        "resource": {
            "commits": [
                {
                    "commitId": SHA,
                    "author": {"name": "Jamal Hartnett", "email": "fabrikamfiber4@hotmail.com"},
                    "comment": "Bump web image to 1.27",
                }
            ],
            "refUpdates": updates
            if updates is not None
            else [{"name": "refs/heads/main", "oldObjectId": PARENT, "newObjectId": SHA}],
            "repository": {
                "id": "278d5cd2-584d-4b63-824a-2ba458937249",
                "name": "Fabrikam-Fiber-Git",
                "project": {"id": "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c", "name": "Fabrikam"},
                "defaultBranch": "refs/heads/main",
                "remoteUrl": "https://dev.azure.com/fabrikam/Fabrikam/_git/Fabrikam-Fiber-Git",
            },
            "pushedBy": {
                "displayName": "Jamal Hartnett",
                "uniqueName": "fabrikamfiber4@hotmail.com",
            },
            "pushId": 14,
            "date": "2026-01-01T00:00:00Z",
        },
        "resourceVersion": "1.0",
        "createdDate": "2026-01-01T00:00:01Z",
    }


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# GitHub


def test_read_delivery_github_push_returns_push() -> None:
    body = body_of(github_push())
    result = read_delivery(github_headers(body), body, SECRET)
    assert result == Push("main", None, SHA, GITHUB_DELIVERY, Sender.GITHUB)


def test_read_delivery_github_headers_lowercase_returns_push() -> None:
    body = body_of(github_push(ref="refs/heads/feature/login"))
    headers = {name.lower(): value for name, value in github_headers(body).items()}
    result = read_delivery(headers, body, SECRET)
    assert isinstance(result, Push)
    assert result.branch == "feature/login"


def test_read_delivery_github_ping_returns_ping() -> None:
    body = body_of(
        {
            "zen": "Design for failure.",
            "hook_id": 512345678,
            "hook": {"type": "Repository", "id": 512345678, "events": ["push"], "active": True},
            "repository": {"id": 712345678, "full_name": "octo-org/stack"},
            "sender": {"login": "mona", "id": 583231},
        }
    )
    assert read_delivery(github_headers(body, "ping"), body, SECRET) == Ping(Sender.GITHUB)


def test_read_delivery_github_annotated_tag_push_returns_tag_with_peeled_commit() -> None:
    payload = github_push(ref="refs/tags/v1.4.0", after=TAG_OBJECT, base_ref="refs/heads/main")
    payload["head_commit"] = {"id": SHA, "message": "Bump web image to 1.27"}
    body = body_of(payload)
    result = read_delivery(github_headers(body), body, SECRET)
    assert result == Push(None, "v1.4.0", SHA, GITHUB_DELIVERY, Sender.GITHUB)


def test_read_delivery_github_form_encoded_push_returns_push() -> None:
    body = urlencode({"payload": json.dumps(github_push())}).encode()
    result = read_delivery(github_headers(body, form=True), body, SECRET)
    assert result == Push("main", None, SHA, GITHUB_DELIVERY, Sender.GITHUB)


def test_read_delivery_github_form_without_payload_field_raises_invalid_input() -> None:
    body = urlencode({"data": json.dumps(github_push())}).encode()
    with pytest.raises(InvalidInput, match="payload"):
        read_delivery(github_headers(body, form=True), body, SECRET)


def test_read_delivery_github_form_signature_over_decoded_json_raises_unauthorized() -> None:
    payload = json.dumps(github_push())
    body = urlencode({"payload": payload}).encode()
    headers = github_headers(payload.encode(), form=True)
    with pytest.raises(Unauthorized, match="signature mismatch"):
        read_delivery(headers, body, SECRET)


def test_read_delivery_github_issues_event_returns_ignored() -> None:
    body = body_of(
        {
            "action": "opened",
            "issue": {"number": 1347, "title": "Found a bug", "state": "open"},
            "repository": {"id": 712345678, "full_name": "octo-org/stack"},
            "sender": {"login": "mona", "id": 583231},
        }
    )
    result = read_delivery(github_headers(body, "issues"), body, SECRET)
    assert isinstance(result, Ignored)
    assert result.sender == Sender.GITHUB
    assert result.delivery_id == GITHUB_DELIVERY
    assert "issues" in result.reason


def test_read_delivery_github_branch_deleted_returns_ignored() -> None:
    payload = github_push(after=ZERO, deleted=True, head_commit=None, commits=[])
    body = body_of(payload)
    result = read_delivery(github_headers(body), body, SECRET)
    assert isinstance(result, Ignored)
    assert "deleted" in result.reason


def test_read_delivery_github_other_ref_namespace_returns_ignored() -> None:
    body = body_of(github_push(ref="refs/notes/commits"))
    result = read_delivery(github_headers(body), body, SECRET)
    assert isinstance(result, Ignored)


def test_read_delivery_github_missing_signature_raises_unauthorized() -> None:
    body = body_of(github_push())
    headers = github_headers(body)
    del headers["X-Hub-Signature-256"]
    with pytest.raises(Unauthorized, match="missing signature"):
        read_delivery(headers, body, SECRET)


def test_read_delivery_github_wrong_secret_raises_unauthorized() -> None:
    body = body_of(github_push())
    with pytest.raises(Unauthorized, match="signature mismatch"):
        read_delivery(github_headers(body, secret="not-the-secret"), body, SECRET)


def test_read_delivery_github_tampered_body_raises_unauthorized() -> None:
    body = body_of(github_push())
    headers = github_headers(body)
    tampered = body.replace(b"refs/heads/main", b"refs/heads/prod")
    with pytest.raises(Unauthorized, match="signature mismatch"):
        read_delivery(headers, tampered, SECRET)


def test_read_delivery_github_signature_without_prefix_raises_unauthorized() -> None:
    body = body_of(github_push())
    headers = github_headers(body) | {"X-Hub-Signature-256": hex_hmac(SECRET, body)}
    with pytest.raises(Unauthorized, match="signature mismatch"):
        read_delivery(headers, body, SECRET)


def test_read_delivery_github_non_ascii_signature_raises_unauthorized() -> None:
    body = body_of(github_push())
    headers = github_headers(body) | {"X-Hub-Signature-256": "sha256=\u00e9\udcff"}
    with pytest.raises(Unauthorized, match="signature mismatch"):
        read_delivery(headers, body, SECRET)


def test_read_delivery_github_signature_without_event_raises_invalid_input() -> None:
    body = body_of(github_push())
    headers = github_headers(body)
    del headers["X-GitHub-Event"]
    with pytest.raises(InvalidInput, match="X-GitHub-Event"):
        read_delivery(headers, body, SECRET)


def test_read_delivery_github_push_without_ref_raises_invalid_input() -> None:
    payload = github_push()
    del payload["ref"]
    body = body_of(payload)
    with pytest.raises(InvalidInput, match="without ref"):
        read_delivery(github_headers(body), body, SECRET)


def test_read_delivery_github_push_without_after_raises_invalid_input() -> None:
    payload = github_push()
    del payload["after"]
    body = body_of(payload)
    with pytest.raises(InvalidInput, match="without a commit"):
        read_delivery(github_headers(body), body, SECRET)


@pytest.mark.parametrize("after", [SHA[:7], SHA.upper(), SHA + "0", "g" * 40, 12345])
def test_read_delivery_github_push_malformed_sha_raises_invalid_input(after: object) -> None:
    body = body_of(github_push(after=SHA) | {"after": after})
    with pytest.raises(InvalidInput, match="full lowercase hex commit SHA"):
        read_delivery(github_headers(body), body, SECRET)


def test_read_delivery_github_push_sha256_repository_returns_push() -> None:
    sha256 = hashlib.sha256(b"commit").hexdigest()
    body = body_of(github_push(after=sha256))
    result = read_delivery(github_headers(body), body, SECRET)
    assert isinstance(result, Push)
    assert result.commit == sha256


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b"\xff\xfe\x00"])
def test_read_delivery_github_bad_json_raises_invalid_input(body: bytes) -> None:
    with pytest.raises(InvalidInput):
        read_delivery(github_headers(body), body, SECRET)


def test_read_delivery_bad_json_before_authentication_raises_unauthorized() -> None:
    body = b"{not json"
    with pytest.raises(Unauthorized):
        read_delivery(github_headers(body, secret="guess"), body, SECRET)


def test_read_delivery_empty_secret_raises_unauthorized() -> None:
    body = body_of(github_push())
    with pytest.raises(Unauthorized):
        read_delivery(github_headers(body, secret=""), body, "")


# Gitea and Forgejo


def test_read_delivery_gitea_push_returns_push() -> None:
    body = body_of(gitea_push())
    result = read_delivery(gitea_headers(body), body, SECRET)
    assert result == Push("main", None, SHA, "d6a43b7e-5f0c-4b7d-9a5e-2f3c1b0e8d71", Sender.GITEA)


def test_read_delivery_forgejo_push_returns_push() -> None:
    body = body_of(gitea_push(ref="refs/heads/release/2.0"))
    result = read_delivery(gitea_headers(body, "Forgejo"), body, SECRET)
    assert result == Push(
        "release/2.0", None, SHA, "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b", Sender.FORGEJO
    )


def test_read_delivery_gitea_tag_push_returns_tag() -> None:
    body = body_of(gitea_push(ref="refs/tags/v2.0.0"))
    result = read_delivery(gitea_headers(body), body, SECRET)
    assert isinstance(result, Push)
    assert (result.branch, result.tag, result.commit) == (None, "v2.0.0", SHA)


def test_read_delivery_gitea_form_encoded_push_returns_push() -> None:
    body = urlencode({"payload": json.dumps(gitea_push())}).encode()
    headers = gitea_headers(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    result = read_delivery(headers, body, SECRET)
    assert isinstance(result, Push)
    assert result.branch == "main"


def test_read_delivery_gitea_pull_request_event_returns_ignored() -> None:
    body = body_of({"action": "opened", "number": 3, "pull_request": {"id": 9}})
    result = read_delivery(gitea_headers(body, event="pull_request"), body, SECRET)
    assert isinstance(result, Ignored)
    assert result.sender == Sender.GITEA


@pytest.mark.parametrize("kind", ["Gitea", "Forgejo"])
def test_read_delivery_gitea_like_missing_signature_raises_unauthorized(kind: str) -> None:
    body = body_of(gitea_push())
    headers = gitea_headers(body, kind)
    del headers[f"X-{kind}-Signature"]
    with pytest.raises(Unauthorized, match="missing signature"):
        read_delivery(headers, body, SECRET)


@pytest.mark.parametrize("kind", ["Gitea", "Forgejo"])
def test_read_delivery_gitea_like_wrong_signature_raises_unauthorized(kind: str) -> None:
    body = body_of(gitea_push())
    headers = gitea_headers(body, kind) | {f"X-{kind}-Signature": hex_hmac("wrong", body)}
    with pytest.raises(Unauthorized, match="signature mismatch"):
        read_delivery(headers, body, SECRET)


def test_read_delivery_gitea_push_short_sha_raises_invalid_input() -> None:
    body = body_of(gitea_push(after=SHA[:10]))
    with pytest.raises(InvalidInput, match="SHA"):
        read_delivery(gitea_headers(body), body, SECRET)


# GitLab


def test_read_delivery_gitlab_push_with_token_returns_push() -> None:
    body = body_of(gitlab_push())
    result = read_delivery(gitlab_headers(), body, SECRET)
    assert result == Push("main", None, SHA, GITLAB_UUID, Sender.GITLAB)


def test_read_delivery_gitlab_without_event_uuid_uses_idempotency_key() -> None:
    body = body_of(gitlab_push())
    headers = gitlab_headers()
    del headers["X-Gitlab-Event-UUID"]
    result = read_delivery(headers, body, SECRET)
    assert isinstance(result, Push)
    assert result.delivery_id == GITLAB_IDEMPOTENCY


def test_read_delivery_gitlab_tag_push_hook_returns_peeled_commit() -> None:
    payload = gitlab_push(ref="refs/tags/v1.4.0", after=TAG_OBJECT, kind="tag_push")
    body = body_of(payload)
    result = read_delivery(gitlab_headers("Tag Push Hook"), body, SECRET)
    assert result == Push(None, "v1.4.0", SHA, GITLAB_UUID, Sender.GITLAB)


def test_read_delivery_gitlab_branch_deleted_returns_ignored() -> None:
    body = body_of(gitlab_push(after=ZERO, checkout_sha=None))
    result = read_delivery(gitlab_headers(), body, SECRET)
    assert isinstance(result, Ignored)
    assert "deleted" in result.reason


def test_read_delivery_gitlab_merge_request_hook_returns_ignored() -> None:
    body = body_of(
        {
            "object_kind": "merge_request",
            "event_type": "merge_request",
            "project": {"id": 15, "path_with_namespace": "ops/stack"},
            "object_attributes": {"iid": 7, "action": "open", "source_branch": "feature"},
        }
    )
    result = read_delivery(gitlab_headers("Merge Request Hook"), body, SECRET)
    assert result == Ignored(
        "GitLab event 'Merge Request Hook' does not trigger a sync", Sender.GITLAB, GITLAB_UUID
    )


def test_read_delivery_gitlab_system_hook_push_returns_push() -> None:
    body = body_of(gitlab_push())
    result = read_delivery(gitlab_headers("System Hook"), body, SECRET)
    assert isinstance(result, Push)
    assert result.branch == "main"


def test_read_delivery_gitlab_system_hook_project_create_returns_ignored() -> None:
    body = body_of({"event_name": "project_create", "name": "stack", "project_id": 74})
    result = read_delivery(gitlab_headers("System Hook"), body, SECRET)
    assert isinstance(result, Ignored)


def test_read_delivery_gitlab_wrong_token_raises_unauthorized() -> None:
    body = body_of(gitlab_push())
    with pytest.raises(Unauthorized, match="token mismatch"):
        read_delivery(gitlab_headers(token="guess"), body, SECRET)


def test_read_delivery_gitlab_missing_token_raises_unauthorized() -> None:
    body = body_of(gitlab_push())
    with pytest.raises(Unauthorized, match="missing token"):
        read_delivery(gitlab_headers(token=None), body, SECRET)


def test_read_delivery_gitlab_push_without_commit_raises_invalid_input() -> None:
    payload = gitlab_push()
    del payload["after"]
    body = body_of(payload)
    with pytest.raises(InvalidInput, match="without a commit"):
        read_delivery(gitlab_headers(), body, SECRET)


def test_read_delivery_gitlab_signed_push_returns_push() -> None:
    body = body_of(gitlab_push())
    headers = signed_gitlab_headers(body)
    result = read_delivery(headers, body, SIGNING_SECRET, now=NOW)
    assert result == Push("main", None, SHA, GITLAB_UUID, Sender.GITLAB)


def test_read_delivery_gitlab_signed_with_raw_secret_returns_push() -> None:
    body = body_of(gitlab_push())
    headers = signed_gitlab_headers(body, key=SECRET.encode())
    assert isinstance(read_delivery(headers, body, SECRET, now=NOW), Push)


def test_read_delivery_gitlab_signed_several_signatures_one_valid_returns_push() -> None:
    body = body_of(gitlab_push())
    headers = signed_gitlab_headers(body)
    stale_key = standard_signature(b"old key".ljust(32, b"."), GITLAB_IDEMPOTENCY, "1", body)
    headers["webhook-signature"] = f"v1a,abc {stale_key} {headers['webhook-signature']}"
    assert isinstance(read_delivery(headers, body, SIGNING_SECRET, now=NOW), Push)


def test_read_delivery_gitlab_signed_timestamp_within_tolerance_returns_push() -> None:
    body = body_of(gitlab_push())
    headers = signed_gitlab_headers(body, timestamp=NOW - SIGNATURE_TOLERANCE_SECONDS)
    assert isinstance(read_delivery(headers, body, SIGNING_SECRET, now=NOW), Push)


def test_read_delivery_gitlab_signed_bad_signature_raises_unauthorized() -> None:
    body = body_of(gitlab_push())
    headers = signed_gitlab_headers(body, key=b"k" * 32)
    with pytest.raises(Unauthorized, match="signature mismatch"):
        read_delivery(headers, body, SIGNING_SECRET, now=NOW)


def test_read_delivery_gitlab_signed_bad_signature_with_right_token_raises_unauthorized() -> None:
    body = body_of(gitlab_push())
    headers = signed_gitlab_headers(body, key=b"k" * 32) | {"X-Gitlab-Token": SIGNING_SECRET}
    with pytest.raises(Unauthorized, match="signature mismatch"):
        read_delivery(headers, body, SIGNING_SECRET, now=NOW)


def test_read_delivery_gitlab_signed_tampered_id_raises_unauthorized() -> None:
    body = body_of(gitlab_push())
    headers = signed_gitlab_headers(body) | {"webhook-id": "another-delivery"}
    with pytest.raises(Unauthorized, match="signature mismatch"):
        read_delivery(headers, body, SIGNING_SECRET, now=NOW)


@pytest.mark.parametrize("offset", [-SIGNATURE_TOLERANCE_SECONDS - 1, 3600])
def test_read_delivery_gitlab_signed_stale_timestamp_raises_unauthorized(offset: float) -> None:
    body = body_of(gitlab_push())
    headers = signed_gitlab_headers(body, timestamp=NOW + offset)
    with pytest.raises(Unauthorized, match="timestamp"):
        read_delivery(headers, body, SIGNING_SECRET, now=NOW)


@pytest.mark.parametrize("stamp", ["1_767_225_600", "-1", "1767225600.0", "soon"])
def test_read_delivery_gitlab_signed_malformed_timestamp_raises_unauthorized(stamp: str) -> None:
    body = body_of(gitlab_push())
    headers = signed_gitlab_headers(body) | {"webhook-timestamp": stamp}
    with pytest.raises(Unauthorized, match="timestamp"):
        read_delivery(headers, body, SIGNING_SECRET, now=NOW)


def test_read_delivery_gitlab_signed_without_id_raises_unauthorized() -> None:
    body = body_of(gitlab_push())
    headers = signed_gitlab_headers(body)
    del headers["webhook-id"]
    with pytest.raises(Unauthorized, match="missing signature"):
        read_delivery(headers, body, SIGNING_SECRET, now=NOW)


def test_standard_webhooks_key_whsec_secret_returns_decoded_bytes() -> None:
    assert standard_webhooks_key(SIGNING_SECRET) == SIGNING_KEY
    assert standard_webhooks_key("plain-secret") == b"plain-secret"
    assert standard_webhooks_key("whsec_not base64!") == b"whsec_not base64!"


# Azure DevOps


def test_read_delivery_azure_git_push_with_basic_auth_returns_push() -> None:
    body = body_of(azure_push())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Authorization": basic("ferry", SECRET),
    }
    result = read_delivery(headers, body, SECRET)
    assert result == Push(
        "main", None, SHA, "03c164c2-8912-4d5e-8009-3707d5f83734", Sender.AZURE_DEVOPS
    )


def test_read_delivery_azure_git_push_wrong_password_raises_unauthorized() -> None:
    body = body_of(azure_push())
    with pytest.raises(Unauthorized, match="token mismatch"):
        read_delivery({"Authorization": basic("ferry", "guess")}, body, SECRET)


@pytest.mark.parametrize("authorization", ["Basic !!!", basic("ferry", ""), "Digest abc"])
def test_read_delivery_azure_malformed_credentials_raises_unauthorized(
    authorization: str,
) -> None:
    body = body_of(azure_push())
    with pytest.raises(Unauthorized):
        read_delivery({"Authorization": authorization}, body, SECRET)


def test_read_delivery_azure_tag_push_returns_tag() -> None:
    update = {"name": "refs/tags/v3", "oldObjectId": ZERO, "newObjectId": SHA}
    body = body_of(azure_push([update]))
    result = read_delivery({"Authorization": basic("", SECRET)}, body, SECRET)
    assert isinstance(result, Push)
    assert (result.branch, result.tag, result.commit) == (None, "v3", SHA)


def test_read_delivery_azure_several_refs_returns_push_of_everything() -> None:
    updates = [
        {"name": "refs/heads/main", "oldObjectId": PARENT, "newObjectId": SHA},
        {"name": "refs/heads/dev", "oldObjectId": PARENT, "newObjectId": TAG_OBJECT},
        {"name": "refs/heads/old", "oldObjectId": PARENT, "newObjectId": ZERO},
    ]
    body = body_of(azure_push(updates))
    result = read_delivery({"Authorization": f"Bearer {SECRET}"}, body, SECRET)
    assert isinstance(result, Push)
    assert (result.branch, result.tag, result.commit) == (None, None, None)


def test_read_delivery_azure_branch_deleted_returns_ignored() -> None:
    update = {"name": "refs/heads/old", "oldObjectId": PARENT, "newObjectId": ZERO}
    body = body_of(azure_push([update]))
    result = read_delivery({"Authorization": basic("ferry", SECRET)}, body, SECRET)
    assert isinstance(result, Ignored)


def test_read_delivery_azure_pull_request_event_returns_ignored() -> None:
    payload = azure_push() | {"eventType": "git.pullrequest.created"}
    body = body_of(payload)
    result = read_delivery({"Authorization": basic("ferry", SECRET)}, body, SECRET)
    assert isinstance(result, Ignored)
    assert result.sender == Sender.AZURE_DEVOPS


def test_read_delivery_azure_push_without_ref_updates_raises_invalid_input() -> None:
    payload = azure_push()
    del payload["resource"]["refUpdates"]
    body = body_of(payload)
    with pytest.raises(InvalidInput, match="refUpdates"):
        read_delivery({"Authorization": basic("ferry", SECRET)}, body, SECRET)


def test_read_delivery_azure_short_object_id_raises_invalid_input() -> None:
    update = {"name": "refs/heads/main", "oldObjectId": PARENT, "newObjectId": SHA[:8]}
    body = body_of(azure_push([update]))
    with pytest.raises(InvalidInput, match="SHA"):
        read_delivery({"Authorization": basic("ferry", SECRET)}, body, SECRET)


# Generic


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}


def test_read_delivery_generic_ref_and_commit_returns_push() -> None:
    body = body_of({"ref": "refs/heads/main", "commit": SHA})
    result = read_delivery(bearer() | {"Idempotency-Key": "run-4711"}, body, SECRET)
    assert result == Push("main", None, SHA, "run-4711", Sender.GENERIC)


def test_read_delivery_generic_branch_only_returns_push_without_commit() -> None:
    body = body_of({"branch": "release/1.0"})
    result = read_delivery(bearer(), body, SECRET)
    assert result == Push("release/1.0", None, None, None, Sender.GENERIC)


@pytest.mark.parametrize("body", [b"{}", b"", b"  \n"])
def test_read_delivery_generic_empty_body_returns_push_of_everything(body: bytes) -> None:
    result = read_delivery(bearer(), body, SECRET)
    assert result == Push(None, None, None, None, Sender.GENERIC)


def test_read_delivery_generic_curl_form_content_type_reads_json() -> None:
    body = body_of({"ref": "main"})
    headers = bearer() | {"Content-Type": "application/x-www-form-urlencoded"}
    result = read_delivery(headers, body, SECRET)
    assert isinstance(result, Push)
    assert result.branch == "main"


def test_read_delivery_generic_tag_ref_returns_tag() -> None:
    result = read_delivery(bearer(), body_of({"ref": "refs/tags/v1"}), SECRET)
    assert isinstance(result, Push)
    assert (result.branch, result.tag) == (None, "v1")


def test_read_delivery_generic_wrong_bearer_raises_unauthorized() -> None:
    with pytest.raises(Unauthorized, match="token mismatch"):
        read_delivery({"Authorization": "Bearer guess"}, b"{}", SECRET)


def test_read_delivery_generic_no_credentials_raises_unauthorized() -> None:
    with pytest.raises(Unauthorized, match="missing token"):
        read_delivery({"Content-Type": "application/json"}, b"{}", SECRET)


def test_read_delivery_generic_commit_without_ref_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="needs the branch"):
        read_delivery(bearer(), body_of({"commit": SHA}), SECRET)


@pytest.mark.parametrize(
    "payload",
    [
        {"ref": "refs/heads/main", "commit": SHA[:12]},
        {"ref": "refs/heads/main", "commit": SHA.upper()},
        {"ref": "refs/pull/7/head"},
        {"ref": ""},
        {"branch": 7},
    ],
)
def test_read_delivery_generic_malformed_payload_raises_invalid_input(
    payload: dict[str, Any],
) -> None:
    with pytest.raises(InvalidInput):
        read_delivery(bearer(), body_of(payload), SECRET)


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'"main"'])
def test_read_delivery_generic_bad_json_raises_invalid_input(body: bytes) -> None:
    with pytest.raises(InvalidInput):
        read_delivery(bearer(), body, SECRET)


def test_read_delivery_overlong_delivery_id_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="delivery id"):
        read_delivery(bearer() | {"Idempotency-Key": "x" * 300}, b"{}", SECRET)
