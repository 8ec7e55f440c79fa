"""Webhook deliveries: verify, decide, enqueue. Never deploy inline (senders wait ≤ 10 s)."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass

from ferry.domain.messages import SyncJob
from ferry.domain.models import SyncOrigin, SyncType
from ferry.errors import InvalidInput, Unauthorized
from ferry.git.source import is_full_sha
from ferry.jobs import enqueue_sync_job
from ferry.store.repositories import get_repository, get_webhook_secret


@dataclass(frozen=True)
class WebhookAccepted:
    job_id: str
    branch: str | None
    commit: str | None


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _branch_from(payload: dict[str, object]) -> str | None:
    ref = payload.get("ref", payload.get("branch"))
    if ref is None:
        return None
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput("ref/branch must be a non-empty string")
    ref = ref.strip()
    if ref.startswith("refs/heads/"):
        branch = ref[len("refs/heads/") :]
        if not branch:
            raise InvalidInput(f"ref {ref!r} names no branch")
        return branch
    if ref.startswith("refs/"):
        raise InvalidInput(f"ref {ref!r} is not a branch (refs/heads/...)")
    return ref


def accept_generic_webhook(
    repository_id: str, authorization: str | None, body: bytes
) -> WebhookAccepted:
    """A generic sender: `Authorization: Bearer <webhook secret>`, optional {ref|branch, commit}.

    Unknown repository → NotFound; wrong secret → Unauthorized; nothing is queued unless the
    delivery is verified and well formed.
    """
    repository = get_repository(repository_id)
    presented = _bearer(authorization)
    if presented is None or not hmac.compare_digest(
        presented.encode(), get_webhook_secret(repository_id).encode()
    ):
        raise Unauthorized("missing or wrong webhook secret")
    if repository.sync_type is not SyncType.WEBHOOK:
        raise InvalidInput(
            f"repository {repository_id} syncs by {repository.sync_type}, not webhook"
        )

    payload: dict[str, object] = {}
    if body.strip():
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise InvalidInput("body must be JSON") from exc
        if not isinstance(parsed, dict):
            raise InvalidInput("body must be a JSON object")
        payload = parsed
    branch = _branch_from(payload)
    commit = payload.get("commit")
    if commit is not None and (not isinstance(commit, str) or not is_full_sha(commit.lower())):
        raise InvalidInput("commit must be a full 40-character SHA")
    if commit is not None and branch is None:
        raise InvalidInput("a commit needs the branch it was pushed to (ref or branch)")
    job = SyncJob(
        repository_id=repository_id,
        origin=SyncOrigin.REPOSITORY_WEBHOOK,
        branch=branch,
        commit=commit.lower() if isinstance(commit, str) else None,
    )
    return WebhookAccepted(job_id=enqueue_sync_job(job), branch=branch, commit=job.commit)
