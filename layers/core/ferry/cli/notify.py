"""`ferry notify …`: where deploy outcomes are sent (apprise URLs), and which applications."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ferry.cli.client import ApiClient, CliError
from ferry.cli.output import (
    JsonOption,
    YesOption,
    ago,
    cell,
    confirm,
    details,
    fail,
    print_json,
    say,
    session,
    show,
    spinner,
    table,
    when,
)
from ferry.cli.resolve import APPLICATION, NOTIFICATION, resolve

app = typer.Typer(
    help="Notification targets (apprise URLs): add, list, test, attach to applications, remove.",
    no_args_is_help=True,
)

TargetArgument = Annotated[str, typer.Argument(help="Notification target id or exact name.")]
ApplicationsArgument = Annotated[
    list[str], typer.Argument(help="Application ids or exact names.", show_default=False)
]
UrlHelp = (
    "An apprise URL (slack://, discord://, mailto://, json://, ...); '-' reads it from stdin, "
    "which keeps its tokens out of shell history."
)


def _url(value: str) -> str:
    url = sys.stdin.read().strip() if value == "-" else value.strip()
    if not url:
        raise CliError("the URL is empty")
    return url


def _rows(target: dict[str, Any], attached: list[dict[str, Any]] | None) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("id", target["id"]),
        ("name", target["name"]),
        ("url", target["display_url"]),
        ("last status", cell(target["last_status"])),
        ("last sent", when(target["last_sent_at"]) or "never"),
        ("last error", cell(target["last_error"], "red")),
        ("created", when(target["created_at"])),
    ]
    if attached is not None:
        rows.append(("applications", ", ".join(a["name"] for a in attached) or "none"))
    return rows


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for people, e.g. ops-slack.")],
    url: Annotated[str, typer.Argument(help=UrlHelp)],
    as_json: JsonOption = False,
) -> None:
    """Add a target; attach it with `ferry notify attach`. Only its redacted URL is shown."""
    with session() as client:
        created = client.post("/notifications", {"name": name, "url": _url(url)})
    if as_json:
        print_json(created)
        return
    say(f"Notification target {created['name']} ({created['id']}) added.", "green")
    show(details(_rows(created, None)))


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """Every target: redacted URL, last status, attached applications."""
    with session() as client:
        targets: list[dict[str, Any]] = client.get("/notifications")
        applications: list[dict[str, Any]] = client.get("/applications") if targets else []
    if as_json:
        print_json(targets)
        return
    if not targets:
        say("No notification targets yet: `ferry notify add NAME URL` adds one.")
        return
    result = table(
        "id", "name", "url", "apps", "last status", "last sent", "last error",
        no_wrap=("id", "name"),
    )  # fmt: skip
    for t in targets:
        result.add_row(
            cell(t["id"]),
            cell(t["name"]),
            cell(t["display_url"]),
            cell(str(sum(t["id"] in a["notification_ids"] for a in applications))),
            cell(t["last_status"]),
            cell(ago(t["last_sent_at"], never="never")),
            cell(t["last_error"], "red"),
        )
    show(result)


@app.command("show")
def show_(target: TargetArgument, as_json: JsonOption = False) -> None:
    """One target and the applications it is attached to."""
    with session() as client:
        found = resolve(client, NOTIFICATION, target)
        if as_json:
            print_json(found)
            return
        attached = [a for a in client.get("/applications") if found["id"] in a["notification_ids"]]
    show(details(_rows(found, attached)))


@app.command("set")
def set_(
    target: TargetArgument,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    url: Annotated[str | None, typer.Option("--url", help=UrlHelp)] = None,
    as_json: JsonOption = False,
) -> None:
    """Rename a target or give it a new URL."""
    with session() as client:
        body = {k: v for k, v in {"name": name, "url": _url(url) if url else None}.items() if v}
        if not body:
            raise CliError("nothing to change: pass --name or --url")
        changed = client.patch(
            f"/notifications/{resolve(client, NOTIFICATION, target)['id']}", body
        )
    if as_json:
        print_json(changed)
        return
    say(f"Notification target {changed['name']} ({changed['id']}) changed.", "green")
    show(details(_rows(changed, None)))


@app.command("test")
def send_test(target: TargetArgument, as_json: JsonOption = False) -> None:
    """Send a test notification now."""
    with session() as client:
        found = resolve(client, NOTIFICATION, target)
        with spinner(f"Sending a test notification to {found['name']}…"):
            result = client.post(f"/notifications/{found['id']}/test", timeout=60)
    if as_json:
        print_json(result)
    if not result["ok"]:
        fail(f"sending to {found['name']} failed: {result['error'] or 'no reason given'}")
    if not as_json:
        say(f"Test notification sent to {found['name']} ({found['display_url']}).", "green")


@app.command("rm")
def remove(target: TargetArgument, yes: YesOption = False) -> None:
    """Delete a target; it is detached from every application."""
    with session() as client:
        found = resolve(client, NOTIFICATION, target)
        confirm(f"Delete notification target {found['name']} ({found['id']})?", yes)
        client.delete(f"/notifications/{found['id']}")
    say(f"Notification target {found['name']} ({found['id']}) deleted.", "green")


def _retarget(client: ApiClient, target: str, applications: list[str], attach: bool) -> None:
    found = resolve(client, NOTIFICATION, target)
    for reference in applications:
        application = resolve(client, APPLICATION, reference)
        current: list[str] = application["notification_ids"]
        wanted = [*current, found["id"]] if attach else [t for t in current if t != found["id"]]
        wanted = list(dict.fromkeys(wanted))
        label = f"{application['name']} ({application['id']})"
        if wanted == current:
            say(f"{label}: already {'attached' if attach else 'detached'}.")
            continue
        client.patch(f"/applications/{application['id']}", {"notification_ids": wanted})
        say(f"{label}: {'attached to' if attach else 'detached from'} {found['name']}.", "green")


@app.command("attach")
def attach(target: TargetArgument, applications: ApplicationsArgument) -> None:
    """Send these applications' deploy outcomes to the target."""
    with session() as client:
        _retarget(client, target, applications, attach=True)


@app.command("detach")
def detach(target: TargetArgument, applications: ApplicationsArgument) -> None:
    """Stop sending these applications' deploy outcomes to the target."""
    with session() as client:
        _retarget(client, target, applications, attach=False)
