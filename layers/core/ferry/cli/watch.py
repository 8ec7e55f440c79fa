"""`ferry watch`: the status table, live, from the API's change feed (GET /api/v1/events)."""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from ferry.cli.client import ApiClient, CliError, ServerSentEvent
from ferry.cli.output import JsonOption, fail, note, printable, session, short, stdout
from ferry.cli.status import Overview

# Longer than the server's 15 s keep-alive, and than the ~25 s a Lambda-hosted feed holds a
# long-poll, so a healthy feed never trips it; a silent, dead connection is replaced after it.
READ_TIMEOUT_SECONDS = 45.0
RECONNECT_SECONDS = 2.0
RECENT_LINES = 8
TICK_SECONDS = 0.25


@dataclass(frozen=True)
class Connected:
    resumed: bool  # True when the feed resumed after the last event we saw: nothing was missed


@dataclass(frozen=True)
class Lost:
    reason: str


@dataclass(frozen=True)
class Fatal:
    error: CliError


FeedItem = Connected | Lost | Fatal | ServerSentEvent
Mode = Literal["live", "lines", "json"]


class FeedReader(threading.Thread):
    """Reads the feed on its own thread, so that neither a blocking read nor a reconnect holds up
    Ctrl-C or the deadline, and reconnects with Last-Event-ID after a drop.

    It is a daemon: once stopped, a read already blocking ends with the next keep-alive or event,
    and the process never waits for it.
    """

    def __init__(self, client: ApiClient, since: str | None) -> None:
        super().__init__(name="ferry-watch-feed", daemon=True)
        self.inbox: queue.Queue[FeedItem] = queue.Queue()
        self._client = client
        self._stopping = threading.Event()
        self._last_id = since

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                delay = 0.0  # a feed that ended cleanly (a Lambda long-poll) is resumed at once
                try:
                    self._follow()
                except CliError as exc:
                    if exc.status is not None and exc.status < 500 and exc.status != 429:
                        self.inbox.put(Fatal(exc))  # a bad token or URL does not heal by retrying
                        return
                    if not self._stopping.is_set():
                        self.inbox.put(Lost(str(exc)))
                    delay = RECONNECT_SECONDS
                self._stopping.wait(delay)
        finally:
            self._client.close()

    def _follow(self) -> None:
        resumed = self._last_id is not None
        with self._client.events(self._last_id, read_timeout=READ_TIMEOUT_SECONDS) as events:
            self.inbox.put(Connected(resumed=resumed))
            try:
                for event in events:
                    if self._stopping.is_set():
                        return
                    if event.event == "update":
                        self.inbox.put(event)
            finally:
                # Also set by the stream's first block (where it starts) when no change came:
                # a reconnect then resumes there instead of fetching everything again.
                self._last_id = events.last_id or self._last_id


def _resource(path: str) -> tuple[str, str]:
    """`/api/v1/applications/app_1` → (`applications`, `app_1`)."""
    parts = path.rstrip("/").split("/")
    return (parts[-2], parts[-1]) if len(parts) >= 2 else ("", path)


class Watcher:
    """Keeps the overview current from feed events and shows each change: as a live table on a
    terminal, as one line per change when piped, or as one JSON object per change (--json)."""

    def __init__(self, client: ApiClient, overview: Overview, *, mode: Mode) -> None:
        self.client = client
        self.overview = overview
        self.mode = mode
        self.recent: list[Text] = []
        self._repeated = ("", 0)  # the last change said, and how many times in a row
        self.state = Text("connecting…", style="yellow")
        self._announced = False
        self._live: Live | None = None

    def display(self) -> AbstractContextManager[Any]:
        if self.mode != "live":
            return nullcontext()
        self._live = Live(
            self._render(), console=stdout(), refresh_per_second=4, redirect_stderr=False
        )
        return self._live

    def connected(self, item: Connected) -> None:
        if not item.resumed and self.mode != "json":
            # The feed starts at "now": anything that changed before it connected is fetched.
            self.overview = Overview.fetch(self.client)
        self.state = Text(f"● live: {self.client.api_url}  (Ctrl-C stops)", style="green")
        if not self._announced and self.mode != "live":
            note(f"watching {self.client.api_url}/api/v1/events for changes (Ctrl-C stops)")
        self._announced = True
        self._refresh()

    def lost(self, item: Lost) -> None:
        self.state = Text(f"○ reconnecting: {item.reason}", style="yellow")
        if self.mode != "live":
            note(f"feed lost ({item.reason}); reconnecting")
        self._refresh()

    def update(self, event: ServerSentEvent) -> None:
        try:
            change: dict[str, Any] = json.loads(event.data)
        except ValueError:
            return
        if self.mode == "json":
            number = int(event.id) if event.id and event.id.isdigit() else event.id
            sys.stdout.write(json.dumps({"id": number, **change}) + "\n")
            sys.stdout.flush()
            return
        said = Text(printable(str(change.get("kind", "update"))), style="bold")
        said.append(printable(f" {self._describe(str(change.get('path', '')))}"))
        if change.get("ok") is False:
            said.append(" (failed)", style="red")
        if change.get("detail"):
            said.append(printable(f" — {change['detail']}"))
        line = Text(datetime.now().strftime("%H:%M:%S "), style="dim").append_text(said)
        if self.mode == "lines":
            stdout().print(line, soft_wrap=True)
            return
        line.no_wrap, line.overflow = True, "ellipsis"
        self._remember(said.plain, line)
        self._refresh()

    def _remember(self, said: str, line: Text) -> None:
        """Add to the recent changes; a repeat of the last one (the feed names what changed, so
        two quick changes can read the same state) is counted instead of listed twice."""
        if self.recent and self._repeated[0] == said:
            self._repeated = (said, self._repeated[1] + 1)
            line.append(f" ({self._repeated[1]} times)", style="dim")
            self.recent[-1] = line
            return
        self._repeated = (said, 1)
        self.recent = [*self.recent, line][-RECENT_LINES:]

    def _describe(self, path: str) -> str:
        """Re-read the changed resource; describe it as it is now (or was, when deleted)."""
        collection, resource_id = _resource(path)
        known: dict[str, dict[str, Any]] | None = {
            "applications": self.overview.applications,
            "repositories": self.overview.repositories,
            "agents": self.overview.agents,
        }.get(collection)
        try:
            record: dict[str, Any] | None = self.client.get(f"/{collection}/{resource_id}")
        except CliError as exc:
            if exc.status != 404:
                return f"{path} (could not read it: {exc})"
            record = None
        if known is not None:
            previous = known.pop(resource_id, None)
            if record is not None:
                known[resource_id] = record
        else:
            previous = None
        shown = record or previous
        if shown is None:
            return resource_id
        label = f"{shown.get('name') or shown.get('url') or resource_id} ({resource_id})"
        if record is None:
            return f"{label}: gone"
        if collection == "applications":
            state = f"{record['sync_status']}, {record['health_status']}"
            if record["commit"]:
                state += f" at {short(record['commit'])}"
            if record["last_sync_error"]:
                state += f" — {record['last_sync_error']}"
            return f"{label}: {state}"
        if collection == "repositories":
            error = f" — {record['last_sync_error']}" if record["last_sync_error"] else ""
            return f"{label}: {record['sync_status']}{error}"
        if collection == "agents":
            return f"{label}: {'online' if record['online'] else 'offline'}"
        return label

    def _render(self) -> RenderableType:
        recent: RenderableType = (
            Group(*self.recent) if self.recent else Text("no changes yet", style="dim")
        )
        return Group(
            self.overview.table(title="Applications", compact=True),
            Text("Recent changes", style="bold"),
            recent,
            Text(""),
            self.state,
        )

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)


def watch(
    once: Annotated[
        bool, typer.Option("--once", help="Exit after the first change (exit 1 if none came).")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Stop after this many seconds.", min=0.1),
    ] = None,
    since: Annotated[
        int | None,
        typer.Option(
            "--since", help="Start after this event id (replays what came after it).", min=0
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Follow every change live: the status table, refreshed from the API's change feed.

    On a terminal it redraws the table; piped, it prints one line per change; with --json, one
    JSON object per change. Ctrl-C stops it.
    """
    with session() as client:
        mode: Mode = "json" if as_json else ("live" if stdout().is_terminal else "lines")
        overview = Overview.fetch(client)  # also proves the address and token before waiting
        watcher = Watcher(client, overview, mode=mode)
        reader = FeedReader(client.clone(), None if since is None else str(since))
        deadline = None if timeout is None else time.monotonic() + timeout
        changed = False
        reader.start()
        try:
            with watcher.display():
                while not (once and changed):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    try:
                        item = reader.inbox.get(
                            timeout=min(TICK_SECONDS, remaining or TICK_SECONDS)
                        )
                    except queue.Empty:
                        continue
                    if isinstance(item, Fatal):
                        raise item.error
                    if isinstance(item, Connected):
                        watcher.connected(item)
                    elif isinstance(item, Lost):
                        watcher.lost(item)
                    else:
                        watcher.update(item)
                        changed = True
        except KeyboardInterrupt:
            return
        finally:
            reader.stop()
    if once and not changed and timeout is not None:
        fail(f"no change within {timeout:g} s")
