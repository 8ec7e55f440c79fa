"""The rules that keep a host at the desired state, with the clock passed in: the image-redeploy
debounce and the self-heal flap guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ferry.domain.desired_state import (
    HEAL_WINDOW,
    HEALS_ALLOWED,
    IMAGE_DEPLOY_INTERVAL,
    decide_heal,
    drift_error,
    image_deploy_wait,
    is_drift_error,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_image_deploy_wait_first_update_deploys_at_once() -> None:
    assert image_deploy_wait(None, T0) == timedelta(0)


def test_image_deploy_wait_within_a_minute_waits_the_rest() -> None:
    assert image_deploy_wait(T0, T0 + timedelta(seconds=20)) == timedelta(seconds=40)
    assert image_deploy_wait(T0, T0 + IMAGE_DEPLOY_INTERVAL) == timedelta(0)
    assert image_deploy_wait(T0, T0 + timedelta(minutes=5)) == timedelta(0)


def test_decide_heal_three_heals_in_ten_minutes_then_refused() -> None:
    heals: list[datetime] = []
    for minute in (0, 1, 2):
        decision = decide_heal(heals, T0 + timedelta(minutes=minute))
        assert decision.heal
        heals = decision.heals
    assert len(heals) == HEALS_ALLOWED

    refused = decide_heal(heals, T0 + timedelta(minutes=3))

    assert not refused.heal
    assert refused.heals == heals


def test_decide_heal_old_heals_leave_the_window() -> None:
    heals = [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]

    decision = decide_heal(heals, T0 + HEAL_WINDOW + timedelta(seconds=1))

    assert decision.heal
    assert decision.heals == [heals[1], heals[2], T0 + HEAL_WINDOW + timedelta(seconds=1)]


def test_decide_heal_a_heal_exactly_window_old_no_longer_counts() -> None:
    heals = [T0, T0 + timedelta(minutes=9), T0 + timedelta(minutes=9, seconds=30)]
    assert decide_heal(heals, T0 + HEAL_WINDOW).heal
    assert not decide_heal(heals, T0 + HEAL_WINDOW - timedelta(seconds=1)).heal


def test_drift_error_marks_the_error_as_drift() -> None:
    error = drift_error(["web stopped", "worker missing"])
    assert error == "drift: web stopped, worker missing"
    assert is_drift_error(error)
    assert not is_drift_error("docker compose up failed: drift")
    assert not is_drift_error(None)
