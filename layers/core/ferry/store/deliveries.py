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


def record_delivery(row: DeliveryRow) -> Delivery:
    """Write a delivery's log entry (made by `delivery_row`)."""
    with translated(f"deliveries of repository {row.repository_id}"):
        row.save()
    return _to_domain(row)


def delivery_row(
    repository_id: str,
    *,
    sender: str,
    outcome: str,
    status_code: int,
    reason: str | None = None,
    event: str | None = None,
    delivery_id: str | None = None,
    job_id: str | None = None,
) -> DeliveryRow:
    """A delivery's log entry, not yet written: `record_delivery` writes it, or the job it
    asked for is recorded with it (`sync.queue.enqueue_sync_job_recording`)."""
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
    return DeliveryRow(
        repository_id=repository_id,
        sort_key=f"{now.isoformat()}#{delivery.id}",
        expires_at=now + RETENTION,
        **delivery.model_dump(),
    )


def list_deliveries(repository_id: str, limit: int = 50) -> list[Delivery]:
    """Newest first."""
    with translated(f"deliveries of repository {repository_id}"):
        rows = DeliveryRow.query(repository_id, scan_index_forward=False, limit=limit)
        return [_to_domain(r) for r in rows]


def _to_domain(row: DeliveryRow) -> Delivery:
    return Delivery(
        id=row.id,
        sender=row.sender,
        event=row.event,
        delivery_id=row.delivery_id,
        outcome=row.outcome,
        reason=row.reason,
        status_code=int(row.status_code),
        job_id=row.job_id,
        received_at=row.received_at,
    )
