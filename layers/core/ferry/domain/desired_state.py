"""Keeping a host at the desired state: the pure rules behind image updates and self-heal.

- Image updates are debounced: one image redeploy per application per `IMAGE_DEPLOY_INTERVAL`,
  however many tags move or webhooks arrive meanwhile.
- Self-heal has a flap guard: at most `HEALS_ALLOWED` heals within `HEAL_WINDOW`; the next drift
  in that window stops healing (the application stays `out_of_sync` and its targets are told)
  until the user turns self-heal on again.
- Drift is written as the application's `last_sync_error` with the `DRIFT_PREFIX`, so the next
  deploy's outcome replaces it like any other error, and "back in sync" can tell a drift apart
  from a failed deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

IMAGE_DEPLOY_INTERVAL = timedelta(minutes=1)
HEALS_ALLOWED = 3
HEAL_WINDOW = timedelta(minutes=10)
DRIFT_PREFIX = "drift: "


def image_deploy_wait(last: datetime | None, now: datetime) -> timedelta:
    """How long until an image update may redeploy again (zero: now)."""
    if last is None:
        return timedelta(0)
    return max(timedelta(0), last + IMAGE_DEPLOY_INTERVAL - now)


@dataclass(frozen=True)
class HealDecision:
    """Whether to heal now, and the heal times to keep (the window, with this heal if any)."""

    heal: bool
    heals: list[datetime]


def decide_heal(heals: list[datetime], now: datetime) -> HealDecision:
    """The flap guard: heal unless `HEALS_ALLOWED` heals already happened within `HEAL_WINDOW`
    before `now`. Heals older than the window are forgotten."""
    recent = sorted(at for at in heals if now - at < HEAL_WINDOW)
    if len(recent) >= HEALS_ALLOWED:
        return HealDecision(heal=False, heals=recent)
    return HealDecision(heal=True, heals=[*recent, now])


def drift_error(differences: list[str]) -> str:
    """The `last_sync_error` an application gets while its host drifts."""
    return DRIFT_PREFIX + ", ".join(differences)


def is_drift_error(error: str | None) -> bool:
    """Whether an application's error is a drift (not a failed deploy)."""
    return error is not None and error.startswith(DRIFT_PREFIX)
