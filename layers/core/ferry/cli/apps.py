"""`ferry app …`: Compose applications, each a file in a repository deployed on one agent."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from ferry.cli.client import ApiClient, CliError
from ferry.cli.output import (
    JsonOption,
    YesOption,
    cell,
    confirm,
    details,
    fail,
    note,
    print_json,
    say,
    session,
    short,
    show,
    spinner,
    table,
    when,
)
from ferry.cli.resolve import AGENT, APPLICATION, NOTIFICATION, REPOSITORY, resolve
from ferry.domain.models import ImageUpdates

app = typer.Typer(
    help="Applications: add, list, show, change, deploy, history, remove.", no_args_is_help=True
)

ApplicationArgument = Annotated[str, typer.Argument(help="Application id or exact name.")]
ImageUpdatesOption = Annotated[
    ImageUpdates | None,
    typer.Option(
        "--image-updates",
        help="When a running image's tag moves in its registry: off, notify, or deploy.",
        show_default=False,
    ),
]
SelfHealOption = Annotated[
    bool | None,
    typer.Option(
        "--self-heal/--no-self-heal",
        help="Redeploy when the host drifts from what was deployed (--self-heal also resumes "
        "healing the flap guard stopped).",
        show_default=False,
    ),
]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds to wait at most.", min=1)]

# The API itself waits up to ~20 s for the agent to tear an application down.
REMOVAL_REQUEST_SECONDS = 90.0
POLL_SECONDS = 0.5


def _automation(image_updates: ImageUpdates | None, self_heal: bool | None) -> dict[str, Any]:
    settings = {
        "image_updates": image_updates.value if image_updates else None,
        "self_heal": self_heal,
    }
    return {k: v for k, v in settings.items() if v is not None}


def _names(client: ApiClient) -> tuple[dict[str, str], dict[str, str]]:
    """Repository URLs and agent names by id."""
    repositories = {r["id"]: r["url"] for r in client.get("/repositories")}
    agents = {a["id"]: a["name"] for a in client.get("/agents")}
    return repositories, agents


@app.command("add")
def add(
    name: Annotated[
        str, typer.Argument(help="Unique on its agent; also names the compose project.")
    ],
    repository: Annotated[
        str, typer.Option("--repo", "-r", help="Repository id or exact URL.", show_default=False)
    ],
    agent: Annotated[
        str, typer.Option("--agent", "-a", help="Agent id or exact name.", show_default=False)
    ],
    path: Annotated[
        str,
        typer.Option(
            "--path", "-p", help="The compose file inside the repository.", show_default=False
        ),
    ],
    branch: Annotated[str, typer.Option("--branch", "-b", help="The branch to track.")] = "main",
    root: Annotated[
        str | None,
        typer.Option(
            "--root",
            help="The directory that ships with the compose file, when not the file's own: a "
            "parent of it, `.` for the repository root.",
            show_default=False,
        ),
    ] = None,
    notify: Annotated[
        list[str] | None,
        typer.Option("--notify", "-n", help="Notification target id or name (repeatable)."),
    ] = None,
    image_updates: ImageUpdatesOption = None,
    self_heal: SelfHealOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an application; its first sync and deploy start at once."""
    with session() as client:
        body = {
            "name": name,
            "repository_id": resolve(client, REPOSITORY, repository)["id"],
            "agent_id": resolve(client, AGENT, agent)["id"],
            "branch": branch,
            "path": path,
            **({"root": root} if root is not None else {}),
            "notification_ids": [resolve(client, NOTIFICATION, n)["id"] for n in notify or []],
            **_automation(image_updates, self_heal),
        }
        created = client.post("/applications", body)
    if as_json:
        print_json(created)
        return
    say(
        f"Application {created['name']} ({created['id']}) added; its first sync is queued "
        f"(job {created['job_id']}).",
        "green",
    )
    note(f"`ferry watch` or `ferry app show {created['id']}` follows its deploy.")


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """Every application with where it comes from and where it runs."""
    with session() as client:
        applications: list[dict[str, Any]] = client.get("/applications")
        repositories, agents = _names(client) if applications and not as_json else ({}, {})
    if as_json:
        print_json(applications)
        return
    if not applications:
        say("No applications yet: `ferry app add NAME --repo … --agent … --path …` adds one.")
        return
    result = table(
        "id", "name", "repository", "agent", "branch", "path", "sync", "health",
        no_wrap=("id", "name"),
    )  # fmt: skip
    for a in applications:
        result.add_row(
            cell(a["id"]),
            cell(a["name"]),
            cell(repositories.get(a["repository_id"], a["repository_id"])),
            cell(agents.get(a["agent_id"], a["agent_id"])),
            cell(a["branch"]),
            cell(a["path"]),
            cell(a["sync_status"]),
            cell(a["health_status"]),
        )
    show(result)


@app.command("show")
def show_(application: ApplicationArgument, as_json: JsonOption = False) -> None:
    """One application: its source, its agent, what it runs and how that went."""
    with session() as client:
        found = resolve(client, APPLICATION, application)
        if as_json:
            print_json(found)
            return
        repositories, agents = _names(client)
        targets = {t["id"]: t["name"] for t in client.get("/notifications")}
    commit = short(found["commit"])
    if commit and found["commit_message"]:
        commit += f"  {found['commit_message'].splitlines()[0]}"
    show(
        details(
            [
                ("id", found["id"]),
                ("name", found["name"]),
                ("compose project", found["project_name"]),
                (
                    "repository",
                    f"{repositories.get(found['repository_id'], '?')} ({found['repository_id']})",
                ),
                ("branch", found["branch"]),
                ("path", found["path"]),
                ("root", found.get("root") or "the compose file's directory"),
                ("bundle", short(found.get("bundle_digest")) or "none yet"),
                ("agent", f"{agents.get(found['agent_id'], '?')} ({found['agent_id']})"),
                ("sync status", cell(found["sync_status"])),
                ("health", cell(found["health_status"])),
                ("commit", commit),
                *(
                    [("deploying", short(found["target_commit"]))]
                    if found.get("target_commit") and found["target_commit"] != found["commit"]
                    else []
                ),
                *(
                    [("pinned at", f"{short(found['pinned_commit'])} (ferry app unpin)")]
                    if found.get("pinned_commit")
                    else []
                ),
                *([("removing", "yes")] if found.get("removing") else []),
                ("last synced", when(found["last_synced_at"]) or "never"),
                ("last error", cell(found["last_sync_error"], "red")),
                (
                    "notifications",
                    ", ".join(targets.get(t, t) for t in found["notification_ids"]) or "none",
                ),
                ("image updates", found["image_updates"]),
                ("self-heal", _self_heal(found)),
                ("created", when(found["created_at"])),
            ]
        )
    )


def _self_heal(application: dict[str, Any]) -> str:
    if not application["self_heal"]:
        return "off"
    if application["self_heal_stopped_at"]:
        return f"stopped by the flap guard {when(application['self_heal_stopped_at'])}"
    return "on"


def _change(client: ApiClient, found: dict[str, Any], body: dict[str, Any], as_json: bool) -> None:
    changed = client.patch(f"/applications/{found['id']}", body)
    if as_json:
        print_json(changed)
        return
    say(f"Application {changed['name']} ({changed['id']}) changed.", "green")
    if changed.get("job_id"):
        say(f"The new branch, path or root is being synced (job {changed['job_id']}).")


@app.command("set")
def set_(
    application: ApplicationArgument,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    branch: Annotated[str | None, typer.Option("--branch", help="Track another branch.")] = None,
    path: Annotated[str | None, typer.Option("--path", help="Another compose file.")] = None,
    root: Annotated[
        str | None,
        typer.Option(
            "--root",
            help="Another directory to ship (`.`: the repository root; `''`: the compose "
            "file's own).",
        ),
    ] = None,
    image_updates: ImageUpdatesOption = None,
    self_heal: SelfHealOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rename an application, point it at another branch, compose file or root (synced at
    once), or change what image updates and drift do to it."""
    body: dict[str, Any] = {
        k: v for k, v in {"name": name, "branch": branch, "path": path}.items() if v
    }
    if root is not None:
        body["root"] = root
    body.update(_automation(image_updates, self_heal))
    with session() as client:
        if not body:
            raise CliError(
                "nothing to change: pass --name, --branch, --path, --root, --image-updates or "
                "--[no-]self-heal"
            )
        _change(client, resolve(client, APPLICATION, application), body, as_json)


@app.command("rename")
def rename(
    application: ApplicationArgument,
    new_name: Annotated[str, typer.Argument(help="The new name.")],
    as_json: JsonOption = False,
) -> None:
    """Rename an application (its compose project keeps the name it was created with)."""
    with session() as client:
        _change(client, resolve(client, APPLICATION, application), {"name": new_name}, as_json)


def _finished_event(
    client: ApiClient, application_id: str, request_id: str
) -> dict[str, Any] | None:
    page = client.get(f"/applications/{application_id}/events", {"limit": 50})
    for event in page["items"]:
        if event["request_id"] == request_id and event["status"] != "running":
            return dict(event)
    return None


@app.command("deploy")
def deploy(
    application: ApplicationArgument,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the agent's answer.")] = False,
    timeout: TimeoutOption = 900,
    as_json: JsonOption = False,
) -> None:
    """Deploy the recorded commit's compose file again."""
    with session() as client:
        found = resolve(client, APPLICATION, application)
        started = client.post(f"/applications/{found['id']}/deploy")
        request_id = started["request_id"]
        if not wait:
            if as_json:
                print_json(started)
            else:
                say(f"Deploy of {found['name']} started (request {request_id}).")
            return
        deadline = time.monotonic() + timeout
        event = None
        with spinner(f"Deploying {found['name']} at {short(found['commit'])}…"):
            while event is None and time.monotonic() < deadline:
                event = _finished_event(client, found["id"], request_id)
                if event is None:
                    time.sleep(POLL_SECONDS)
        if event is None:
            raise CliError(
                f"the deploy has not finished after {timeout:g} s (request {request_id}); "
                "`ferry watch` follows it"
            )
    if as_json:
        print_json(event)
    if event["status"] == "failed":
        fail(f"deploy failed: {event['error'] or event['message'] or 'no reason given'}")
    if not as_json:
        say(f"Deployed {found['name']} ({event['status']}).", "green")


@app.command("rollback")
def rollback(
    application: ApplicationArgument,
    to: Annotated[
        str | None,
        typer.Option("--to", help="The full commit SHA (default: the last good one before now)."),
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Kept in the history.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Go back to an earlier commit and pin the application there: pushes are recorded, not
    deployed, until `ferry app unpin`."""
    body = {k: v for k, v in {"commit": to, "reason": reason}.items() if v}
    with session() as client:
        found = resolve(client, APPLICATION, application)
        started = client.post(f"/applications/{found['id']}/rollback", body)
    if as_json:
        print_json(started)
        return
    say(
        f"{found['name']} is going back to {short(started['commit'])} and stays there "
        f"(job {started['job_id']}); `ferry app unpin {found['name']}` follows the branch again.",
        "green",
    )


@app.command("unpin")
def unpin(application: ApplicationArgument, as_json: JsonOption = False) -> None:
    """Release a rollback's pin: the application follows its branch again (synced at once)."""
    with session() as client:
        found = resolve(client, APPLICATION, application)
        changed = client.post(f"/applications/{found['id']}/unpin")
    if as_json:
        print_json(changed)
        return
    if changed.get("job_id") is None:
        say(f"{found['name']} was not pinned.")
        return
    say(f"{found['name']} follows {found['branch']} again (job {changed['job_id']}).", "green")


@app.command("history")
def history(
    application: ApplicationArgument,
    limit: Annotated[int, typer.Option("--limit", help="Events per page.", min=1, max=200)] = 20,
    before: Annotated[
        int | None, typer.Option("--before", help="Older page: events numbered below this.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The application's syncs and deploys, newest first."""
    with session() as client:
        found = resolve(client, APPLICATION, application)
        page = client.get(f"/applications/{found['id']}/events", {"limit": limit, "before": before})
    if as_json:
        print_json(page)
        return
    if not page["items"]:
        say(f"No history for {found['name']} yet.")
        return
    result = table(
        "#", "when", "type", "trigger", "status", "commit", "detail", "by",
        title=f"History of {found['name']} ({found['id']})",
        no_wrap=("#", "when"),
    )  # fmt: skip
    for e in page["items"]:
        detail = e["error"] or e["message"] or ""
        result.add_row(
            cell(str(e["seq"])),
            cell(when(e["created_at"])),
            cell(e["type"]),
            cell(e["trigger"]),
            cell(e["status"]),
            cell(short(e["commit"])),
            cell(detail, "red" if e["error"] else ""),
            cell(e["actor"]),
        )
    show(result)
    if page["next_before"]:
        note(f"Older: ferry app history {found['id']} --before {page['next_before']}")


def _wait_for_removal(
    client: ApiClient, application_id: str, request_id: str, timeout: float
) -> None:
    """After a 202: until the application is gone, or its removal recorded a failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = _finished_event(client, application_id, request_id)
        except CliError as exc:
            if exc.status == 404:
                return
            raise
        if event is not None and event["status"] == "failed":
            raise CliError(f"{event['error']} (the application is kept)", status=502)
        time.sleep(POLL_SECONDS)
    raise CliError(
        f"the agent is still removing it after {timeout:g} s (request {request_id}); "
        f"`ferry app show {application_id}` follows it"
    )


@app.command("rm")
def remove(
    application: ApplicationArgument,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Forget it without asking its agent (its containers keep running)."
        ),
    ] = False,
    timeout: TimeoutOption = 900,
    yes: YesOption = False,
) -> None:
    """Stop and remove the application on its agent, then delete it."""
    with session() as client:
        found = resolve(client, APPLICATION, application)
        label = f"{found['name']} ({found['id']})"
        if force:
            confirm(f"Forget application {label}? Its containers keep running.", yes)
            client.delete(f"/applications/{found['id']}", {"force": "true"})
            say(f"Application {label} forgotten; its agent was not asked.", "green")
            return
        confirm(f"Remove application {label}? Its agent stops and removes its containers.", yes)
        try:
            with spinner(f"Removing {found['name']} from its agent…"):
                response = client.delete(
                    f"/applications/{found['id']}", timeout=REMOVAL_REQUEST_SECONDS
                )
                if response.status_code == 202:
                    _wait_for_removal(client, found["id"], response.json()["request_id"], timeout)
        except CliError as exc:
            if exc.status == 502:
                raise CliError(
                    f"{exc}; `ferry app rm --force` forgets it without its agent", status=502
                ) from exc
            raise
    say(f"Application {label} removed.", "green")
