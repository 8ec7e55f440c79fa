"""What the CLI shows: tables for people, JSON for scripts, one-line errors on stderr."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.status import Status
from rich.table import Table
from rich.text import Text

from ferry.cli.client import ApiClient, CliError
from ferry.domain.validation import unprintable_character

# Piped output is read by grep and friends: wide enough that rows are not wrapped mid-name.
PIPE_WIDTH = 200

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON).")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

STYLES = {
    "synced": "green",
    "success": "green",
    "healthy": "green",
    "succeeded": "green",
    "online": "green",
    "ok": "green",
    "syncing": "yellow",
    "running": "yellow",
    "out_of_sync": "red",
    "failed": "red",
    "unhealthy": "red",
    "offline": "red",
    "no_change": "cyan",
    "superseded": "cyan",
    "unknown": "dim",
}


def printable(text: str) -> str:
    """`text` safe for a terminal: every character that is not visible text (control and format
    characters, such as ANSI escapes, bidi overrides, NUL, line breaks inside a value) is shown
    as its escape (`\\x1b`, `\\u202e`) instead of acting on the terminal."""
    if unprintable_character(text) is None:
        return text
    return "".join(
        character
        if unprintable_character(character) is None
        else character.encode("unicode_escape", "backslashreplace").decode("ascii")
        for character in text
    )


def stdout() -> Console:
    """A console on the current stdout (looked up per call: tests swap sys.stdout)."""
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        return Console(highlight=False, width=PIPE_WIDTH)
    return console


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    """`error: <message>` as one line on stderr, then exit with `code`."""
    line = Text("error: ", style="bold red").append(printable(" ".join(message.split())))
    stderr().print(line, soft_wrap=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    """A remark for people on stderr (keeps stdout clean for pipes)."""
    stderr().print(Text(printable(message), style="dim"), soft_wrap=True)


@contextmanager
def session() -> Iterator[ApiClient]:
    """The configured API client; CliError anywhere inside becomes a one-line error, and Ctrl-C
    during a wait ends with exit 130 instead of a traceback."""
    client: ApiClient | None = None
    try:
        client = ApiClient.from_environment()
        yield client
    except CliError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    finally:
        if client is not None:
            client.close()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def cell(value: Any, style: str = "") -> Text:
    """A table cell that never interprets API text as rich markup or terminal codes."""
    if value is None or value == "":
        return Text("")
    text = printable(str(value))
    return Text(text, style=style or STYLES.get(text, ""))


def short(commit: str | None) -> str:
    return (commit or "")[:12]


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ago(value: str | None, *, never: str = "") -> str:
    """`12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`; `never` when there is no time."""
    moment = parse_time(value)
    if moment is None:
        return never
    seconds = max(0, int((datetime.now(UTC) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def when(value: str | None) -> str:
    """A local, second-precision time with its age: `2025-01-02 10:11:12 (5 min ago)`."""
    moment = parse_time(value)
    if moment is None:
        return ""
    return f"{moment.astimezone().strftime('%Y-%m-%d %H:%M:%S')} ({ago(value)})"


def table(*columns: str, title: str | None = None, no_wrap: tuple[str, ...] = ()) -> Table:
    """A table whose identifying columns (ids, names) are never wrapped."""
    result = Table(title=title, title_justify="left")
    for column in columns:
        result.add_column(column, no_wrap=column in no_wrap)
    return result


def details(rows: list[tuple[str, Any]]) -> Table:
    """A two-column `field  value` grid for `show` commands."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for field, value in rows:
        grid.add_row(field, value if isinstance(value, Text) else cell(value))
    return grid


def show(renderable: Any) -> None:
    stdout().print(renderable)


def say(message: str, style: str = "") -> None:
    stdout().print(Text(printable(message), style=style), soft_wrap=True)


def print_secret(label: str, secret: str, *, again: str) -> None:
    """A secret on a line of its own (never wrapped, so it copies whole), with the note that it
    is shown once and how to get a new one."""
    console = stdout()
    console.print(Text(f"{label}: ", style="bold").append(secret), soft_wrap=True)
    console.print(
        Text(
            f"  shown once: Ferry never shows this {label.lower()} again; store it now "
            f"(`{again}` makes a new one).",
            style="yellow",
        ),
        soft_wrap=True,
    )


def spinner(message: str) -> Status:
    """A spinner on stderr while we wait (rich prints nothing when stderr is not a terminal)."""
    return stderr().status(message)


def confirm(question: str, yes: bool) -> None:
    """Ask before something destructive; `--yes` skips the question."""
    if yes:
        return
    if not typer.confirm(question, default=False, err=True):
        fail("cancelled (pass --yes to skip this question)")
