"""`ferry agent …`: the hosts that run applications."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ferry.cli.output import (
    JsonOption,
    YesOption,
    ago,
    cell,
    confirm,
    details,
    print_json,
    print_secret,
    say,
    session,
    show,
    table,
    when,
)
from ferry.cli.resolve import AGENT, resolve

app = typer.Typer(
    help="Agents (hosts): add, list, show, rotate their token, image webhook, remove.",
    no_args_is_help=True,
)

AgentArgument = Annotated[str, typer.Argument(help="Agent id or exact name.")]


def _online(agent: dict[str, Any]) -> str:
    return "online" if agent["online"] else "offline"


def _print_token(api_url: str, agent_id: str, token: str) -> None:
    print_secret("Token", token, again=f"ferry agent rotate-token {agent_id}")
    say("Start the agent on its host with:")
    say(f"  FERRY_API_URL={api_url} FERRY_AGENT_TOKEN=<the token> ferry-agent", "cyan")


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name unique among agents, e.g. the host.")],
    as_json: JsonOption = False,
) -> None:
    """Register an agent; prints its token (shown once)."""
    with session() as client:
        created = client.post("/agents", {"name": name})
        api_url = client.api_url
    if as_json:
        print_json(created)
        return
    say(f"Agent {created['name']} ({created['id']}) added.", "green")
    _print_token(api_url, created["id"], created["token"])


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """Every agent: online or not, when it was last heard from, how many applications it runs."""
    with session() as client:
        agents: list[dict[str, Any]] = client.get("/agents")
        applications: list[dict[str, Any]] = client.get("/applications")
    if as_json:
        print_json(agents)
        return
    if not agents:
        say("No agents yet: `ferry agent add NAME` adds one.")
        return
    result = table("id", "name", "status", "last seen", "apps", no_wrap=("id", "name"))
    for a in agents:
        result.add_row(
            cell(a["id"]),
            cell(a["name"]),
            cell(_online(a)),
            cell(ago(a["last_seen_at"], never="never")),
            cell(str(sum(app["agent_id"] == a["id"] for app in applications))),
        )
    show(result)


@app.command("show")
def show_(agent: AgentArgument, as_json: JsonOption = False) -> None:
    """One agent and the applications assigned to it."""
    with session() as client:
        found = resolve(client, AGENT, agent)
        applications = [a for a in client.get("/applications") if a["agent_id"] == found["id"]]
    if as_json:
        print_json(found)
        return
    show(
        details(
            [
                ("id", found["id"]),
                ("name", found["name"]),
                ("status", cell(_online(found))),
                ("last seen", when(found["last_seen_at"]) or "never"),
                ("created", when(found["created_at"])),
                ("applications", ", ".join(a["name"] for a in applications) or "none"),
            ]
        )
    )


@app.command("rotate-token")
def rotate_token(agent: AgentArgument, yes: YesOption = False, as_json: JsonOption = False) -> None:
    """A new agent token, shown once; the old one stops working at once."""
    with session() as client:
        found = resolve(client, AGENT, agent)
        confirm(
            f"Replace the token of agent {found['name']}? It stops working until it runs with "
            "the new one.",
            yes,
        )
        rotated = client.post(f"/agents/{found['id']}/token")
        api_url = client.api_url
    if as_json:
        print_json(rotated)
        return
    say(f"New token for agent {found['name']} ({found['id']}).", "green")
    _print_token(api_url, found["id"], rotated["token"])


@app.command("image-webhook")
def image_webhook(
    agent: AgentArgument, yes: YesOption = False, as_json: JsonOption = False
) -> None:
    """A new image webhook URL for the agent (shown once; a previous one stops working).

    Registries POST image pushes there (Docker Hub, GitHub packages, or `{"image": ...}`); the
    agent then checks those images at once for its applications with image updates on.
    """
    with session() as client:
        found = resolve(client, AGENT, agent)
        confirm(
            f"Make a new image webhook URL for agent {found['name']}? A previous one stops "
            "working.",
            yes,
        )
        issued = client.post(f"/agents/{found['id']}/image-webhook")
    if as_json:
        print_json(issued)
        return
    print_secret(
        "Image webhook URL", issued["webhook_url"], again=f"ferry agent image-webhook {found['id']}"
    )
    say("For GitHub package events, use the token after /images/ as the webhook's secret.")


@app.command("rm")
def remove(agent: AgentArgument, yes: YesOption = False) -> None:
    """Delete an agent and its queue (refused while applications are assigned to it)."""
    with session() as client:
        found = resolve(client, AGENT, agent)
        confirm(f"Delete agent {found['name']} ({found['id']})?", yes)
        client.delete(f"/agents/{found['id']}")
    say(f"Agent {found['name']} ({found['id']}) deleted.", "green")
