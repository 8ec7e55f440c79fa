"""AcquireDeploySlot: one deploy per application at a time, so an older commit can never land
after a newer one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ferry.domain.messages import DeployInput
from ferry.store.applications import acquire_deploy_slot, get_application


def acquire_slot(payload: dict[str, Any]) -> dict[str, bool]:
    """State-machine task: may this deploy go to the agent now?

    `superseded`: a newer request is the application's current one, so this one ends without
    running. `acquired`: this request holds the application's deploy slot. Neither: wait.
    """
    deploy_input = DeployInput.model_validate(payload)
    application = get_application(deploy_input.application_id)
    if application.current_request_id != deploy_input.request_id:
        return {"acquired": False, "superseded": True}
    lease = timedelta(seconds=deploy_input.timeout_seconds + 60)
    acquired = acquire_deploy_slot(application.id, deploy_input.request_id, lease)
    return {"acquired": acquired, "superseded": False}
