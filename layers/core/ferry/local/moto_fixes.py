"""Defects of moto's emulation that AWS does not have, fixed without changing what moto models.

- A task token answered before its state waits for it: a `.waitForTaskToken` task with
  `HeartbeatSeconds` sends its message, and only then sets up the heartbeat it waits on. An
  answer (SendTaskSuccess/Failure) that arrives in between is recorded, but the new heartbeat
  does not know it, so the state waits a whole heartbeat and then fails with
  `States.HeartbeatTimeout` although it has its result. On AWS the answer wins. A fast agent
  (and the in-process transport, which removed the loopback HTTP delay that hid it) answers
  inside that window. The fix: a heartbeat set up after the answer starts out signalled, so the
  waiting state reads the answer at once.
- A heartbeat sent in the same window (SendTaskHeartbeat as soon as the message is received, as
  the agent does) was refused with InvalidToken: there was no heartbeat to signal yet. On AWS
  the token is valid from the moment the message is sent. The fix: such a heartbeat is
  accepted and kept, and the heartbeat set up afterwards starts out signalled.

moto is pinned exactly; tests/integration/test_local_cloud.py covers each fix.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

_MARKER = "_ferry_fixed"
_EARLY_HEARTBEAT = "_ferry_early_heartbeat"
# Orders a heartbeat arriving with the setup of the endpoint it signals.
_SETUP = threading.Lock()


def install() -> None:
    """Apply every fix once per process (idempotent)."""
    original_setup = CallbackEndpoint.setup_heartbeat_endpoint
    if getattr(original_setup, _MARKER, False):
        return
    original_notify_heartbeat = CallbackEndpoint.notify_heartbeat

    def setup_heartbeat_endpoint(self: CallbackEndpoint, heartbeat_seconds: int) -> Any:
        with _SETUP:
            heartbeat = original_setup(self, heartbeat_seconds)
            early = getattr(self, _EARLY_HEARTBEAT, False)
        # `notify` records the outcome before it looks for a heartbeat to signal: whichever
        # side runs second sees the other's write.
        if early or self.get_outcome() is not None:
            heartbeat.notify()  # type: ignore[no-untyped-call]
        return heartbeat

    def notify_heartbeat(self: CallbackEndpoint) -> bool:
        with _SETUP:
            if self._heartbeat_endpoint is None:
                setattr(self, _EARLY_HEARTBEAT, True)
                return True
        return bool(original_notify_heartbeat(self))

    setattr(setup_heartbeat_endpoint, _MARKER, True)
    CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint  # type: ignore[method-assign]
    CallbackEndpoint.notify_heartbeat = notify_heartbeat  # type: ignore[method-assign]
