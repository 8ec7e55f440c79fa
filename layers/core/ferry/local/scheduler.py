"""Fires the template's schedules locally (EventBridge schedules never fire in moto)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger

logger = Logger(service="ferry-local", child=True)

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def rate_seconds(expression: str) -> float:
    """Seconds between runs of a `rate(N unit)` expression (cron expressions are not supported)."""
    match = re.fullmatch(r"rate\((\d+)\s+(\w+)\)", expression.strip())
    if not match or match.group(2) not in _UNITS:
        raise ValueError(f"unsupported schedule expression {expression!r} (use rate(N minutes))")
    return int(match.group(1)) * _UNITS[match.group(2)]


class Scheduler:
    def __init__(
        self, schedules: list[tuple[str, float]], clients: Mapping[str, Any] | None = None
    ) -> None:
        """`schedules`: (function name, seconds between runs); `clients`: the Lambda client each
        function is invoked with (its schedule's role), else this process's own."""
        self.schedules = schedules
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._clients = dict(clients or {})
        self._lambda = boto3.client("lambda")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def fire(self, function_name: str) -> None:
        """Invoke the scheduled function now, with an EventBridge Scheduler-like event."""
        self._clients.get(function_name, self._lambda).invoke(
            FunctionName=function_name,
            InvocationType="Event",
            Payload=json.dumps({"source": "ferry.local.scheduler", "time": time.time()}).encode(),
        )

    def fire_all(self) -> None:
        for function_name, _seconds in self.schedules:
            self.fire(function_name)

    def _run(self) -> None:
        next_run = {name: time.monotonic() + seconds for name, seconds in self.schedules}
        while not self._stop.wait(1.0):
            for name, seconds in self.schedules:
                if time.monotonic() >= next_run[name]:
                    next_run[name] = time.monotonic() + seconds
                    try:
                        self.fire(name)
                    except Exception:  # a schedule must outlive any single failure
                        logger.exception("scheduled invoke failed", extra={"function": name})
