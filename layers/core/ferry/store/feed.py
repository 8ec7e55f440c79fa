"""Announcing changes on the live feed (GET /api/v1/events). Announcing never fails the change
it announces: a feed outage is logged, and clients catch up from the resource itself."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from ferry.errors import FerryError
from ferry.store.changes import record_change

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
