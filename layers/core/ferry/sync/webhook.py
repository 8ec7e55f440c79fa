"""Webhook deliveries: verify, decide, enqueue, and log what was decided. Never deploy inline:
senders such as GitHub wait at most 10 s.

The signature scheme follows the sender's headers (sync/deliveries.py), whatever the
repository's provider; the secret is always the repository's. Every delivery that reaches a
known repository is logged with its outcome (accepted with its job, ignored, refused) and the
reason, so "the webhook answered 2xx but nothing happened" can always be explained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ferry.aws.metrics import count_delivery
from ferry.domain.messages import SyncJob
from ferry.domain.models import Repository, SyncType, Trigger
from ferry.errors import FerryError, InvalidInput, NotFound, RateLimited, Unauthorized
from ferry.store.deliveries import delivery_row, record_delivery
from ferry.store.ratelimit import check_rate
from ferry.store.repositories import get_repository_and_webhook_secret
from ferry.store.tables import DeliveryRow
from ferry.sync.deliveries import Ignored, Ping, Push, Sender, read_delivery
from ferry.sync.queue import enqueue_sync_job_recording

_EVENT_HEADERS = (
    "x-github-event",
    "x-gitea-event",
    "x-forgejo-event",
    "x-gogs-event",
    "x-gitlab-event",
    "x-event-key",
)
_DELIVERY_HEADERS = (
    "x-github-delivery",
    "x-gitea-delivery",
    "x-forgejo-delivery",
    "x-gogs-delivery",
    "x-gitlab-event-uuid",
    "x-request-uuid",
    "x-request-id",
)


@dataclass
class WebhookAnswer:
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)


def _header(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    return next((lowered[n][:200] for n in names if lowered.get(n)), None)


def _sender_hint(headers: Mapping[str, str]) -> str:
    lowered = {k.lower() for k in headers}
    for sender, marker in (
        ("forgejo", "x-forgejo-event"),
        ("gitea", "x-gitea-event"),
        ("gogs", "x-gogs-event"),
        ("bitbucket", "x-event-key"),
        ("gitlab", "x-gitlab-event"),
        ("github", "x-github-event"),
    ):
        if marker in lowered:
            return sender
    return "generic"


def _job_for(repository: Repository, push: Push) -> SyncJob:
    base = {"repository_id": repository.id, "trigger": Trigger.WEBHOOK}
    if push.branch is not None:
        # A provider's push says that the branch moved: the sync resolves its head from the
        # repository, so a replayed (even correctly signed) old delivery cannot move a host back.
        # A generic sender may name a commit on purpose: it deploys only where it is the head or
        # descends from what runs.
        named = push.commit if push.sender == Sender.GENERIC else None
        return SyncJob(**base, branch=push.branch, commit=named, delivery_id=push.delivery_id)
    if push.tag is not None and push.commit is not None:
        # A tag moves the branches that contain its commit; they sync at their latest commit
        # (never back to the tag's, should the branch have moved on since). Which branches that
        # is, the sync finds out: no git call in the request.
        return SyncJob(**base, tag=push.tag, commit=push.commit, delivery_id=push.delivery_id)
    # Everything at its latest commit: a generic delivery naming no ref.
    return SyncJob(**base, delivery_id=push.delivery_id)


def count_refused(source: str, limit: int, repository_id: str | None = None) -> None:
    """Count a delivery that failed authentication (or named no repository), per source address
    and per repository; RateLimited past `limit` a minute for either. Refusals have counts of
    their own, so a flood of them never uses up the accepted deliveries' count."""
    check_rate(f"refused-from#{source}", limit, what=f"refused requests from {source}")
    if repository_id is not None:
        check_rate(
            f"refused-for#{repository_id}",
            limit,
            what=f"refused deliveries for repository {repository_id}",
        )


def receive_webhook(
    repository_id: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    source: str,
    limit: int,
) -> WebhookAnswer:
    """Verify a delivery for the repository and queue what it asks for.

    NotFound for an unknown repository, Unauthorized for a bad or missing signature, InvalidInput
    for a delivery that cannot be acted on; each logged but the first. Rate limits come after
    authentication: refusals count per `source` address and per repository, verified deliveries
    per repository, `limit` a minute each (RateLimited beyond), so nobody who lacks the secret
    can keep a repository's real deliveries out.
    """
    try:
        repository, secret = get_repository_and_webhook_secret(repository_id)
    except NotFound:
        count_refused(source, limit)
        raise
    sender = _sender_hint(headers)
    event = _header(headers, _EVENT_HEADERS)
    seen_id = _header(headers, _DELIVERY_HEADERS)

    def entry(
        outcome: str, status: int, reason: str | None, job_id: str | None = None
    ) -> DeliveryRow:
        return delivery_row(
            repository_id,
            sender=sender,
            outcome=outcome,
            status_code=status,
            reason=reason,
            event=event,
            delivery_id=seen_id,
            job_id=job_id,
        )

    def log(outcome: str, status: int, reason: str | None, job_id: str | None = None) -> None:
        count_delivery(outcome)
        record_delivery(entry(outcome, status, reason, job_id))

    try:
        delivery = read_delivery(headers, body, secret)
    except Unauthorized as exc:
        try:
            count_refused(source, limit, repository_id)
        except RateLimited as limited:
            log("refused", 429, f"{exc}; {limited}")
            raise
        log("refused", 401, str(exc))
        raise
    except InvalidInput as exc:
        log("refused", 400, str(exc))
        raise
    try:
        check_rate(
            f"accepted-for#{repository_id}",
            limit,
            what=f"deliveries for repository {repository_id}",
        )
    except RateLimited as exc:
        log("refused", 429, str(exc))
        raise
    if isinstance(delivery, Ping):
        log("ignored", 200, "ping")
        return WebhookAnswer(200, {"status": "pong"})
    if isinstance(delivery, Ignored):
        log("ignored", 200, delivery.reason)
        return WebhookAnswer(200, {"ignored": delivery.reason})
    if repository.sync_type is not SyncType.WEBHOOK:
        reason = f"repository {repository_id} syncs by {repository.sync_type}, not webhook"
        log("refused", 400, reason)
        raise InvalidInput(reason)
    try:
        # The log entry is written with the job's record (one round trip for both), unless the
        # job was queued before: a redelivery is then logged on its own, as accepted.
        job_id, logged = enqueue_sync_job_recording(
            _job_for(repository, delivery), lambda job_id: [entry("accepted", 202, None, job_id)]
        )
    except FerryError as exc:
        log("refused", 400 if isinstance(exc, InvalidInput) else 503, str(exc))
        raise
    if logged:
        count_delivery("accepted")
    else:
        log("accepted", 202, None, job_id)
    return WebhookAnswer(
        202,
        {
            "job_id": job_id,
            "job_ids": [job_id],
            "branch": delivery.branch,
            "tag": delivery.tag,
            "commit": delivery.commit,
        },
    )
