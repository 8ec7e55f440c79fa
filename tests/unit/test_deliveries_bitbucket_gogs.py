"""Deliveries from Bitbucket Cloud, Bitbucket Data Center, Gogs, and GitLab system hooks of the
older shape: real HMACs over payloads shaped like the ones those senders send."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from ferry.errors import InvalidInput, Unauthorized
from ferry.sync.deliveries import Ignored, Ping, Push, Sender, read_delivery

SECRET = "3c1f7e9a2b4d6f8a0c2e4a6b8d0f1e3a"
SHA = "9f2c4e1b7a3d5c6e8f0a1b2c3d4e5f6a7b8c9d0e"
PARENT = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
ZERO = "0" * 40
REQUEST_UUID = "0c4a6e2f-8b1d-4f3a-9e5c-7d2b1a0f9e8c"


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def signature(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# Bitbucket Cloud


def cloud_headers(body: bytes, event: str = "repo:push", secret: str = SECRET) -> dict[str, str]:
    return {
        "User-Agent": "Bitbucket-Webhooks/2.0",
        "Content-Type": "application/json",
        "X-Event-Key": event,
        "X-Hook-UUID": "d8f1e3b0-5a2c-4e6f-8b9d-0c1a2e3f4b5c",
        "X-Request-UUID": REQUEST_UUID,
        "X-Attempt-Number": "1",
        "X-Hub-Signature": "sha256=" + signature(body, secret),
    }


def change(kind: str | None, name: str, target: str | None, *, closed: bool = False) -> dict:
    new = None
    if kind is not None and target is not None:
        new = {
            "type": kind,
            "name": name,
            "target": {"type": "commit", "hash": target, "message": "Ship it\n"},
            "links": {"html": {"href": f"https://bitbucket.org/acme/stack/branch/{name}"}},
        }
    return {
        "new": new,
        "old": {"type": kind or "branch", "name": name, "target": {"hash": PARENT}},
        "created": False,
        "closed": closed,
        "forced": False,
        "truncated": False,
        "commits": [],
    }


def cloud_push(*changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "push": {"changes": list(changes)},
        "actor": {"display_name": "Mona", "type": "user", "uuid": "{4a3e9b1c}"},
        "repository": {"full_name": "acme/stack", "type": "repository", "uuid": "{7e2c}"},
    }


def test_bitbucket_cloud_branch_push_returns_push() -> None:
    body = body_of(cloud_push(change("branch", "main", SHA)))
    result = read_delivery(cloud_headers(body), body, SECRET)
    assert result == Push("main", None, SHA, REQUEST_UUID, Sender.BITBUCKET)


def test_bitbucket_cloud_tag_push_returns_tag_at_its_commit() -> None:
    body = body_of(cloud_push(change("tag", "v1.2.0", SHA)))
    result = read_delivery(cloud_headers(body), body, SECRET)
    assert result == Push(None, "v1.2.0", SHA, REQUEST_UUID, Sender.BITBUCKET)


def test_bitbucket_cloud_branch_deletion_is_ignored() -> None:
    body = body_of(cloud_push(change(None, "feature", None, closed=True)))
    result = read_delivery(cloud_headers(body), body, SECRET)
    assert isinstance(result, Ignored)
    assert "deleted" in result.reason


def test_bitbucket_cloud_push_of_several_branches_syncs_every_branch() -> None:
    body = body_of(cloud_push(change("branch", "main", SHA), change("branch", "dev", PARENT)))
    result = read_delivery(cloud_headers(body), body, SECRET)
    assert result == Push(None, None, None, REQUEST_UUID, Sender.BITBUCKET)


def test_bitbucket_cloud_other_events_are_ignored() -> None:
    body = body_of({"pullrequest": {"id": 7}})
    result = read_delivery(cloud_headers(body, "pullrequest:created"), body, SECRET)
    assert isinstance(result, Ignored)
    assert "pullrequest:created" in result.reason


def test_bitbucket_wrong_or_missing_or_sha1_signature_raises_unauthorized() -> None:
    body = body_of(cloud_push(change("branch", "main", SHA)))
    with pytest.raises(Unauthorized, match="mismatch"):
        read_delivery(cloud_headers(body, secret="guess"), body, SECRET)
    unsigned = cloud_headers(body)
    del unsigned["X-Hub-Signature"]
    with pytest.raises(Unauthorized, match="missing"):
        read_delivery(unsigned, body, SECRET)
    sha1 = cloud_headers(body)
    sha1["X-Hub-Signature"] = "sha1=" + hmac.new(SECRET.encode(), body, "sha1").hexdigest()
    with pytest.raises(Unauthorized):
        read_delivery(sha1, body, SECRET)


def test_bitbucket_push_without_changes_raises_invalid_input() -> None:
    body = body_of({"push": {}})
    with pytest.raises(InvalidInput, match="changes"):
        read_delivery(cloud_headers(body), body, SECRET)


# Bitbucket Data Center


def dc_headers(body: bytes, event: str = "repo:refs_changed") -> dict[str, str]:
    return {
        "User-Agent": "Atlassian HttpClient 3.0.4 / Bitbucket-8.19.1",
        "Content-Type": "application/json; charset=utf-8",
        "X-Event-Key": event,
        "X-Request-Id": REQUEST_UUID,
        "X-Hub-Signature": "sha256=" + signature(body),
    }


def dc_change(ref: str, kind: str, to_hash: str, change_type: str = "UPDATE") -> dict[str, Any]:
    return {
        "ref": {"id": ref, "displayId": ref.rsplit("/", 1)[-1], "type": kind},
        "refId": ref,
        "fromHash": PARENT,
        "toHash": to_hash,
        "type": change_type,
    }


def dc_push(*changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventKey": "repo:refs_changed",
        "date": "2026-01-01T00:00:00+0000",
        "actor": {"name": "mona", "id": 101},
        "repository": {"slug": "stack", "project": {"key": "OPS"}},
        "changes": list(changes),
    }


def test_bitbucket_data_center_branch_push_returns_push() -> None:
    body = body_of(dc_push(dc_change("refs/heads/main", "BRANCH", SHA)))
    result = read_delivery(dc_headers(body), body, SECRET)
    assert result == Push("main", None, SHA, REQUEST_UUID, Sender.BITBUCKET)


def test_bitbucket_data_center_tag_push_returns_tag() -> None:
    body = body_of(dc_push(dc_change("refs/tags/v2", "TAG", SHA, "ADD")))
    result = read_delivery(dc_headers(body), body, SECRET)
    assert result == Push(None, "v2", SHA, REQUEST_UUID, Sender.BITBUCKET)


def test_bitbucket_data_center_deletion_is_ignored() -> None:
    body = body_of(dc_push(dc_change("refs/heads/old", "BRANCH", ZERO, "DELETE")))
    result = read_delivery(dc_headers(body), body, SECRET)
    assert isinstance(result, Ignored)
    assert "deleted" in result.reason


def test_bitbucket_data_center_diagnostics_ping_returns_ping() -> None:
    body = body_of({"test": True})
    result = read_delivery(dc_headers(body, "diagnostics:ping"), body, SECRET)
    assert result == Ping(Sender.BITBUCKET)


def test_bitbucket_ping_with_wrong_signature_raises_unauthorized() -> None:
    body = body_of({"test": True})
    headers = dc_headers(body, "diagnostics:ping")
    headers["X-Hub-Signature"] = "sha256=" + signature(body, "guess")
    with pytest.raises(Unauthorized):
        read_delivery(headers, body, SECRET)


# Gogs


def gogs_headers(body: bytes, event: str = "push", secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Gogs-Event": event,
        "X-Gogs-Delivery": REQUEST_UUID,
        "X-Gogs-Signature": signature(body, secret),
    }


def gogs_push(ref: str = "refs/heads/main", after: str = SHA) -> dict[str, Any]:
    return {
        "ref": ref,
        "before": PARENT,
        "after": after,
        "compare_url": "https://gogs.example.com/acme/stack/compare/1a2b...9f2c",
        "commits": [{"id": after, "message": "Ship it\n"}],
        "repository": {"id": 12, "full_name": "acme/stack"},
        "pusher": {"username": "mona"},
        "sender": {"username": "mona"},
    }


def test_gogs_push_is_verified_and_read() -> None:
    body = body_of(gogs_push())
    result = read_delivery(gogs_headers(body), body, SECRET)
    assert result == Push("main", None, SHA, REQUEST_UUID, Sender.GOGS)


def test_gogs_wrong_signature_raises_unauthorized() -> None:
    body = body_of(gogs_push())
    with pytest.raises(Unauthorized, match="mismatch"):
        read_delivery(gogs_headers(body, secret="guess"), body, SECRET)


def test_gogs_deletion_and_other_events_are_ignored() -> None:
    deleted = body_of(gogs_push(after=ZERO))
    assert isinstance(read_delivery(gogs_headers(deleted), deleted, SECRET), Ignored)
    issue = body_of({"action": "opened"})
    assert isinstance(read_delivery(gogs_headers(issue, "issues"), issue, SECRET), Ignored)


def test_gitea_delivery_carrying_gogs_headers_too_is_read_as_gitea() -> None:
    body = body_of(gogs_push())
    headers = gogs_headers(body) | {
        "X-Gitea-Event": "push",
        "X-Gitea-Delivery": REQUEST_UUID,
        "X-Gitea-Signature": signature(body),
    }
    assert read_delivery(headers, body, SECRET).sender == Sender.GITEA


# GitLab system hooks of the older shape: `event_name`, no `object_kind`


def test_gitlab_system_hook_push_with_event_name_only_returns_push() -> None:
    payload = {
        "event_name": "push",
        "before": PARENT,
        "after": SHA,
        "ref": "refs/heads/main",
        "checkout_sha": SHA,
        "user_name": "Mona",
        "project_id": 74,
        "project": {"path_with_namespace": "ops/stack"},
        "commits": [],
        "total_commits_count": 1,
    }
    body = body_of(payload)
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": "System Hook",
        "X-Gitlab-Token": SECRET,
        "X-Gitlab-Event-UUID": REQUEST_UUID,
    }
    result = read_delivery(headers, body, SECRET)
    assert result == Push("main", None, SHA, REQUEST_UUID, Sender.GITLAB)
    tag = body_of(payload | {"event_name": "tag_push", "ref": "refs/tags/v3"})
    assert read_delivery(headers, tag, SECRET) == Push(None, "v3", SHA, REQUEST_UUID, Sender.GITLAB)
