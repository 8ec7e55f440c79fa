"""`ferry repo …`: the git repositories Ferry watches."""

from __future__ import annotations

import sys
import time
from pathlib import Path
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
    note,
    print_json,
    print_secret,
    say,
    session,
    show,
    spinner,
    table,
    when,
)
from ferry.cli.resolve import REPOSITORY, resolve
from ferry.domain.models import CredentialKind, Provider, SyncType

app = typer.Typer(
    help="Git repositories: add, list, show, change, sync, remove.", no_args_is_help=True
)

RepositoryArgument = Annotated[str, typer.Argument(help="Repository id or exact URL.")]
SyncTypeOption = Annotated[
    SyncType | None,
    typer.Option("--sync-type", help="How pushes reach Ferry.", case_sensitive=False),
]
IntervalOption = Annotated[
    int | None,
    typer.Option("--interval", help="Polling interval in seconds (at least 30).", min=1),
]
ActionsOption = Annotated[
    bool | None,
    typer.Option(
        "--github-actions/--no-github-actions",
        help="Let GitHub Actions runs of this repository sync it (off unless asked).",
    ),
]
AuthOption = Annotated[
    CredentialKind | None,
    typer.Option("--auth", help="Credentials for a private repository.", case_sensitive=False),
]
UsernameOption = Annotated[str | None, typer.Option("--username", help="User name (basic auth).")]
SecretFileOption = Annotated[
    Path | None,
    typer.Option(
        "--secret-file",
        help="Read the token, password or private key from this file ('-' reads stdin); "
        "without it you are asked for it.",
        allow_dash=True,
    ),
]


def _credentials(
    kind: CredentialKind | None, username: str | None, secret_file: Path | None
) -> dict[str, Any] | None:
    """The `auth` body, reading the secret from a file, stdin or a hidden prompt (never from the
    command line, where shell history and `ps` would keep it)."""
    if kind is None:
        if username or secret_file:
            raise CliError("--username and --secret-file need --auth token|basic|ssh_key")
        return None
    if secret_file is None:
        secret = typer.prompt(f"{kind.value} secret", hide_input=True, err=True)
    elif str(secret_file) == "-":
        secret = sys.stdin.read()
    else:
        try:
            secret = secret_file.read_text()
        except OSError as exc:
            raise CliError(f"cannot read {secret_file}: {exc.strerror or exc}") from exc
    # A private key keeps its final newline; a token or password loses stray whitespace.
    secret = secret if kind is CredentialKind.SSH_KEY else secret.strip()
    if not secret.strip():
        raise CliError("the secret is empty")
    return {"kind": kind.value, "username": username, "secret": secret}


def repository_rows(repository: dict[str, Any]) -> list[tuple[str, Any]]:
    interval = (
        f"{repository['polling_interval_seconds']} s"
        if repository["sync_type"] == SyncType.POLLING
        else ""
    )
    return [
        ("id", repository["id"]),
        ("url", repository["url"]),
        ("provider", repository["provider"]),
        ("sync type", repository["sync_type"]),
        ("polling interval", interval),
        ("github actions", "on" if repository.get("github_actions") else "off"),
        ("sync status", cell(repository["sync_status"])),
        ("last synced", when(repository["last_synced_at"])),
        ("last error", cell(repository["last_sync_error"], "red")),
        ("credentials", "yes" if repository["has_credentials"] else "no"),
        ("created", when(repository["created_at"])),
    ]


@app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="A git URL, a local path or a file:// URL.")],
    sync_type: SyncTypeOption = None,
    interval: IntervalOption = None,
    provider: Annotated[
        Provider, typer.Option("--provider", help="The git host's kind.", case_sensitive=False)
    ] = Provider.GIT,
    auth: AuthOption = None,
    username: UsernameOption = None,
    secret_file: SecretFileOption = None,
    github_actions: ActionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a repository; prints its webhook URL and secret (shown once)."""
    with session() as client:
        body: dict[str, Any] = {"url": url, "provider": provider.value}
        if sync_type is not None:
            body["sync_type"] = sync_type.value
        if interval is not None:
            body["polling_interval_seconds"] = interval
        if github_actions is not None:
            body["github_actions"] = github_actions
        credentials = _credentials(auth, username, secret_file)
        if credentials is not None:
            body["auth"] = credentials
        created = client.post("/repositories", body)
    if as_json:
        print_json(created)
        return
    say(f"Repository {created['id']} added.", "green")
    show(details(repository_rows(created)))
    say(f"Webhook URL: {created['webhook_url']}")
    print_secret(
        "Webhook secret",
        created["webhook_secret"],
        again=f"ferry repo rotate-secret {created['id']}",
    )


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """Every repository with its sync type and sync status."""
    with session() as client:
        repositories: list[dict[str, Any]] = client.get("/repositories")
        applications: list[dict[str, Any]] = client.get("/applications")
    if as_json:
        print_json(repositories)
        return
    if not repositories:
        say("No repositories yet: `ferry repo add URL` adds one.")
        return
    result = table(
        "id", "url", "sync type", "apps", "sync", "last synced", "last error", no_wrap=("id",)
    )
    for r in repositories:
        result.add_row(
            cell(r["id"]),
            cell(r["url"]),
            cell(r["sync_type"]),
            cell(str(sum(a["repository_id"] == r["id"] for a in applications))),
            cell(r["sync_status"]),
            cell(ago(r["last_synced_at"], never="never")),
            cell(r["last_sync_error"], "red"),
        )
    show(result)


@app.command("show")
def show_(repository: RepositoryArgument, as_json: JsonOption = False) -> None:
    """One repository and the applications it feeds."""
    with session() as client:
        found = resolve(client, REPOSITORY, repository)
        applications = [a for a in client.get("/applications") if a["repository_id"] == found["id"]]
    if as_json:
        print_json(found)
        return
    rows = repository_rows(found)
    rows.append(
        (
            "applications",
            ", ".join(f"{a['name']} ({a['branch']}:{a['path']})" for a in applications) or "none",
        )
    )
    show(details(rows))


@app.command("set")
def set_(
    repository: RepositoryArgument,
    url: Annotated[str | None, typer.Option("--url", help="A new URL.")] = None,
    sync_type: SyncTypeOption = None,
    interval: IntervalOption = None,
    auth: AuthOption = None,
    username: UsernameOption = None,
    secret_file: SecretFileOption = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Remove the stored credentials.")
    ] = False,
    github_actions: ActionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a repository's URL, sync type, polling interval or credentials."""
    with session() as client:
        found = resolve(client, REPOSITORY, repository)
        body: dict[str, Any] = {}
        if url is not None:
            body["url"] = url
        if sync_type is not None:
            body["sync_type"] = sync_type.value
        if interval is not None:
            body["polling_interval_seconds"] = interval
        if github_actions is not None:
            body["github_actions"] = github_actions
        if no_auth and auth is not None:
            raise CliError("--auth and --no-auth exclude each other")
        if no_auth:
            body["auth"] = None
        credentials = _credentials(auth, username, secret_file)
        if credentials is not None:
            body["auth"] = credentials
        if not body:
            raise CliError(
                "nothing to change: pass --url, --sync-type, --interval, --auth or --github-actions"
            )
        changed = client.patch(f"/repositories/{found['id']}", body)
    if as_json:
        print_json(changed)
        return
    say(f"Repository {changed['id']} changed.", "green")
    show(details(repository_rows(changed)))


def _wait_for_sync(
    client: ApiClient, repository_id: str, before: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Poll until the sync requested after `before` was taken has ended (success sets a newer
    last_synced_at; failure a newer updated_at)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current: dict[str, Any] = client.get(f"/repositories/{repository_id}")
        status = current["sync_status"]
        if status == "success" and current["last_synced_at"] != before["last_synced_at"]:
            return current
        if status == "failed" and current["updated_at"] != before["updated_at"]:
            return current
        time.sleep(0.5)
    raise CliError(
        f"the sync of {repository_id} has not finished after {timeout:g} s "
        f"(`ferry repo show {repository_id}` follows it)"
    )


@app.command("sync")
def sync(
    repository: RepositoryArgument,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the sync has dispatched its deploys.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds --wait waits at most.", min=1)
    ] = 120,
    as_json: JsonOption = False,
) -> None:
    """Sync now: fetch the latest commit of every tracked branch and deploy what changed."""
    with session() as client:
        found = resolve(client, REPOSITORY, repository)
        accepted = client.post(f"/repositories/{found['id']}/sync")
        if not wait:
            if as_json:
                print_json(accepted)
            else:
                say(f"Sync of {found['id']} queued (job {accepted['job_id']}).")
            return
        with spinner(f"Syncing {found['url']}…"):
            done = _wait_for_sync(client, found["id"], found, timeout)
    if as_json:
        print_json(done)
    if done["sync_status"] == "failed":
        fail(f"sync failed: {done['last_sync_error']}")
    if not as_json:
        say(f"Synced {found['id']}: every branch resolved and its deploys handed on.", "green")
        note("Deploys run on the agents now; `ferry status` or `ferry watch` follows them.")


@app.command("rotate-secret")
def rotate_secret(
    repository: RepositoryArgument, yes: YesOption = False, as_json: JsonOption = False
) -> None:
    """A new webhook secret, shown once; the old one stops working at once."""
    with session() as client:
        found = resolve(client, REPOSITORY, repository)
        confirm(
            f"Replace the webhook secret of {found['url']}? Senders using the old one fail "
            "until they get the new one.",
            yes,
        )
        rotated = client.post(f"/repositories/{found['id']}/webhook-secret")
    if as_json:
        print_json(rotated)
        return
    say(f"Webhook URL: {rotated['webhook_url']}")
    print_secret(
        "Webhook secret", rotated["webhook_secret"], again=f"ferry repo rotate-secret {found['id']}"
    )


@app.command("rm")
def remove(repository: RepositoryArgument, yes: YesOption = False) -> None:
    """Delete a repository (refused while applications use it)."""
    with session() as client:
        found = resolve(client, REPOSITORY, repository)
        confirm(f"Delete repository {found['id']} ({found['url']})?", yes)
        client.delete(f"/repositories/{found['id']}")
    say(f"Repository {found['id']} deleted.", "green")
