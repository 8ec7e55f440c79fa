"""Announcing changes on the live feed (GET /api/v1/events). Announcing never fails the change
it announces: a feed outage is logged, and clients catch up from the resource itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aws_lambda_powertools import Logger
from pynamodb.models import Model

from ferry.errors import FerryError, TransientError
from ferry.store.changes import change_row, record_change

logger = Logger(child=True)

API = "/api/v1"


def repository_path(repository_id: str) -> str:
    return f"{API}/repositories/{repository_id}"


def application_path(application_id: str) -> str:
    return f"{API}/applications/{application_id}"


def agent_path(agent_id: str) -> str:
    return f"{API}/agents/{agent_id}"


def notification_path(target_id: str) -> str:
    return f"{API}/notifications/{target_id}"


def announce(path: str, kind: str, *, ok: bool = True, detail: str | None = None) -> None:
    try:
        record_change(path, kind, ok=ok, detail=detail)
    except FerryError:
        logger.exception("change not announced", extra={"path": path, "kind": kind})


def announced_with(write: Callable[..., None], path: str, kind: str) -> None:
    """Make `write(along=[change])` carry the change that announces it, in its own transaction
    (one round trip fewer than writing, then announcing). Without the feed (its number cannot
    be taken, or the transaction fails for an outage) the write goes alone, logged as
    `announce` logs. For unconditional writes: a number taken for a write whose condition
    fails would leave a gap in the feed."""
    try:
        along: Sequence[Model] = [change_row(path, kind)]
    except FerryError:
        logger.exception("change not announced", extra={"path": path, "kind": kind})
        write()
        return
    try:
        write(along=along)
    except TransientError:
        logger.exception("change not announced", extra={"path": path, "kind": kind})
        write()
