"""`ferry up` prints each application status change as it happens."""

from __future__ import annotations

from collections.abc import Callable

from ferry.errors import FerryError
from ferry.store.applications import list_applications


class StatusPrinter:
    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._seen: dict[str, tuple[str, str, str | None, str | None]] = {}

    def tick(self) -> None:
        try:
            applications = list_applications()
        except FerryError:
            return
        for a in applications:
            now = (a.sync_status.value, a.health_status.value, a.commit, a.last_sync_error)
            if self._seen.get(a.id) == now:
                continue
            self._seen[a.id] = now
            commit = f" at {a.commit[:12]}" if a.commit else ""
            error = f" — {a.last_sync_error}" if a.last_sync_error else ""
            self._say(f"{a.name}: {a.sync_status.value}, {a.health_status.value}{commit}{error}")
