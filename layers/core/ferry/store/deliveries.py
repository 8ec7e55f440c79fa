"""The webhook delivery log: every delivery's outcome and reason, so "the webhook answered 2xx
but nothing happened" can always be explained. Kept 30 days."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from ferry.domain.models import new_id, utcnow
from ferry.store.errors import translated
from ferry.store.tables import DeliveryRow

RETENTION = timedelta(days=30)


class Delivery(BaseModel):
    id: str
    sender: str
    event: str | None
    delivery_id: str | None
    outcome: str  # accepted, ignored, refused
    reason: str | None
    status_code: int
    job_id: str | None
    received_at: datetime


def record_delivery(
    repository_id: str,
    *,
    sender: str,
    outcome: str,
    status_code: int,
    reason: str | None = None,
    event: str | None = None,
    delivery_id: str | None = None,
    job_id: str | None = None,
) -> Delivery:
    now = utcnow()
    delivery = Delivery(
        id=new_id("dlv"),
        sender=sender,
        event=event,
        delivery_id=delivery_id,
        outcome=outcome,
        reason=reason,
        status_code=status_code,
        job_id=job_id,
        received_at=now,
    )
    with translated(f"deliveries of repository {repository_id}"):
        DeliveryRow(
            repository_id=repository_id,
            sort_key=f"{now.isoformat()}#{delivery.id}",
            expires_at=now + RETENTION,
            **delivery.model_dump(),
        ).save()
    return delivery


def list_deliveries(repository_id: str, limit: int = 50) -> list[Delivery]:
    """Newest first."""
    with translated(f"deliveries of repository {repository_id}"):
        rows = DeliveryRow.query(repository_id, scan_index_forward=False, limit=limit)
        return [
            Delivery(
                id=r.id,
                sender=r.sender,
                event=r.event,
                delivery_id=r.delivery_id,
                outcome=r.outcome,
                reason=r.reason,
                status_code=int(r.status_code),
                job_id=r.job_id,
                received_at=r.received_at,
            )
            for r in rows
        ]
