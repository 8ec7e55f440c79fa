"""Image updates: a registry tag an application runs now names another digest.

The agent finds out (a HEAD on the manifest, on an interval or when the image webhook asks) and
reports; the application's `image_updates` decides: `notify` tells its notification targets,
`deploy` redeploys the recorded commit with fresh pulls as one deploy request, at most one a
minute (domain/desired_state.py). A check the registry refused (401, 429, ...) is an
`image_update` event with the registry's answer.

The image webhook (`POST /api/v1/webhooks/images/{token}`) only makes the agent check at once:
its token is the agent's image webhook token (`<agent id>.<secret>`, shown once by
`POST /api/v1/agents/{id}/image-webhook`), the same token signs GitHub's deliveries, and the
payload (Docker Hub's, GitHub's `package` / `registry_package`, or a generic `{image, digest}`)
only names which images to check: what is deployed is decided by the agent's own check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ferry.aws.queues import send_agent_hint
from ferry.deploy.notify import notify_targets
from ferry.domain.desired_state import IMAGE_DEPLOY_INTERVAL, image_deploy_wait
from ferry.domain.messages import (
    AgentApplication,
    ImageCheckHint,
    ImageReport,
    ImageReportAnswer,
)
from ferry.domain.models import (
    Agent,
    Application,
    ApplicationEvent,
    ApplicationSyncStatus,
    EventStatus,
    EventType,
    ImageUpdates,
    Trigger,
    utcnow,
)
from ferry.errors import Unauthorized
from ferry.manage.applications import redeploy_application
from ferry.manage.drift import record_automatic
from ferry.store.agents import authenticate_image_webhook
from ferry.store.applications import list_agent_applications, swap_application_field
from ferry.store.feed import announce, application_path
from ferry.store.ratelimit import check_rate
from ferry.sync.image_deliveries import read_image_delivery
from ferry.sync.webhook import count_refused


def watched_applications(agent: Agent) -> list[AgentApplication]:
    """The agent's applications with what it watches for each (its image-check list)."""
    return [
        AgentApplication(
            application_id=a.id, project_name=a.project_name, image_updates=a.image_updates
        )
        for a in list_agent_applications(agent.id)
    ]


def _seconds(wait: timedelta) -> int:
    return max(1, math.ceil(wait.total_seconds()))


def receive_image_report(application: Application, report: ImageReport) -> ImageReportAnswer:
    """Act on its agent's image check of an application, as its `image_updates` says."""
    mode = application.image_updates
    if mode is ImageUpdates.OFF or application.removal_request_id is not None:
        return ImageReportAnswer(action="ignored")
    event = ApplicationEvent(
        application_id=application.id,
        type=EventType.IMAGE_UPDATE,
        trigger=Trigger.IMAGE_UPDATE,
        status=EventStatus.FAILED,
        commit=application.commit,
        finished_at=utcnow(),
    )
    if report.error:
        record_automatic(event.model_copy(update={"error": f"image check failed: {report.error}"}))
    if not report.changes:
        return ImageReportAnswer(action="recorded" if report.error else "ignored")
    moved = "; ".join(change.describe() for change in report.changes)
    if mode is ImageUpdates.NOTIFY:
        record_automatic(
            event.model_copy(
                update={"status": EventStatus.SUCCEEDED, "message": f"new image digests: {moved}"}
            )
        )
        if application.notification_ids:
            notify_targets(
                application.notification_ids,
                f"Ferry: new image for {application.name} (image update)",
                f"{application.name} runs images whose tag moved: {moved}. "
                f"`ferry app deploy {application.id}` deploys them.",
            )
        return ImageReportAnswer(action="notified")
    now = utcnow()
    wait = image_deploy_wait(application.image_deployed_at, now)
    if wait.total_seconds() > 0:
        return ImageReportAnswer(action="debounced", retry_after_seconds=_seconds(wait))
    if application.sync_status is ApplicationSyncStatus.SYNCING:
        # A deploy is on its way; check again once it is done.
        return ImageReportAnswer(
            action="debounced", retry_after_seconds=_seconds(IMAGE_DEPLOY_INTERVAL)
        )
    if not swap_application_field(
        application.id, "image_deployed_at", application.image_deployed_at, now
    ):
        return ImageReportAnswer(
            action="debounced", retry_after_seconds=_seconds(IMAGE_DEPLOY_INTERVAL)
        )
    request_id = redeploy_application(
        application.id, trigger=Trigger.IMAGE_UPDATE, reason=f"image update: {moved}"
    )
    announce(
        application_path(application.id),
        f"application.{Trigger.IMAGE_UPDATE.value}",
        detail=f"redeploying: {moved}",
    )
    return ImageReportAnswer(action="deployed", request_id=request_id)


# --- the image webhook -----------------------------------------------------------------------


def receive_image_webhook(
    token: str, headers: Mapping[str, str], body: bytes, *, source: str, limit: int
) -> tuple[int, dict[str, Any]]:
    """Verify an image webhook and have its agent check the images it names at once (the status
    code and body to answer). Never deploys inline: the agent's check reports as usual.

    Rate limits come after authentication, as for repository webhooks: refusals count per
    `source` address, verified deliveries per agent, `limit` a minute each (RateLimited beyond).
    """
    try:
        agent = authenticate_image_webhook(token)
        delivery = read_image_delivery(headers, body, token)
    except Unauthorized:
        count_refused(source, limit)
        raise
    check_rate(f"images-for#{agent.id}", limit, what=f"image deliveries for agent {agent.id}")
    if not delivery.images:
        return 200, {"ping": "ok"}
    if not any(a.image_updates is not ImageUpdates.OFF for a in list_agent_applications(agent.id)):
        return 200, {"ignored": "no application on this agent watches its images"}
    send_agent_hint(agent.queue_url, ImageCheckHint(images=delivery.images))
    return 202, {"checking": delivery.images, "agent_id": agent.id}
