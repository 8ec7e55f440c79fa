"""Defects of moto's emulation that AWS does not have, fixed without changing what moto models.

- A task token answered before its state waits for it: a `.waitForTaskToken` task with
  `HeartbeatSeconds` sends its message, and only then sets up the heartbeat it waits on. An
  answer (SendTaskSuccess/Failure) that arrives in between is recorded, but the new heartbeat
  does not know it, so the state waits a whole heartbeat and then fails with
  `States.HeartbeatTimeout` although it has its result. On AWS the answer wins. A fast agent
  (and the in-process transport, which removed the loopback HTTP delay that hid it) answers
  inside that window. The fix: a heartbeat set up after the answer starts out signalled, so the
  waiting state reads the answer at once.

moto is pinned exactly; tests/integration/test_local_cloud.py covers each fix.
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

_MARKER = "_ferry_fixed"


def install() -> None:
    """Apply every fix once per process (idempotent)."""
    original = CallbackEndpoint.setup_heartbeat_endpoint
    if getattr(original, _MARKER, False):
        return

    def setup_heartbeat_endpoint(self: CallbackEndpoint, heartbeat_seconds: int) -> Any:
        heartbeat = original(self, heartbeat_seconds)
        # `notify` records the outcome before it looks for a heartbeat to signal: whichever
        # side runs second sees the other's write.
        if self.get_outcome() is not None:
            heartbeat.notify()  # type: ignore[no-untyped-call]
        return heartbeat

    setattr(setup_heartbeat_endpoint, _MARKER, True)
    CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint  # type: ignore[method-assign]
