"""AcquireDeploySlot: one request per application at the agent at a time, so an older commit can
never land after a newer one, and a teardown never runs beside (or before) a deploy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from ferry.store.applications import acquire_deploy_slot, get_application


class SlotAsk(BaseModel):
    """What a deploy's or an undeploy's execution input says about the slot it wants."""

    model_config = ConfigDict(extra="ignore")

    application_id: str
    request_id: str
    timeout_seconds: int


def slot_lease(timeout_seconds: int) -> timedelta:
    """How long a request holds the slot: past its deploy's timeout, so only a request whose
    execution died without releasing it lets the next one take it."""
    return timedelta(seconds=timeout_seconds + 60)


# What AcquireDeploySlot answers for a request that holds the slot.
ACQUIRED = {"acquired": True, "superseded": False}


def acquire_slot(payload: dict[str, Any]) -> dict[str, bool]:
    """State-machine task (deploy and undeploy): may this request go to the agent now?

    `superseded`: another request is the application's current one (a newer commit, or a
    delete), so this one ends without running. `acquired`: this request holds the application's
    deploy slot. Neither: wait (a request at the agent holds it).
    """
    deploy_input = SlotAsk.model_validate(payload)
    lease = slot_lease(deploy_input.timeout_seconds)
    # One conditional write when the slot is free (the common case); the row is read only to
    # tell a newer request from a busy slot.
    if acquire_deploy_slot(deploy_input.application_id, deploy_input.request_id, lease):
        return dict(ACQUIRED)
    application = get_application(deploy_input.application_id)  # NotFound when it is gone
    superseded = application.current_request_id != deploy_input.request_id
    return {"acquired": False, "superseded": superseded}
