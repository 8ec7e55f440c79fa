"""`ferry`: run the local stack, and look at what it runs."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ferry.cli import agents, apps, notify, repos
from ferry.cli.output import fail, printable
from ferry.cli.status import status
from ferry.cli.watch import watch

app = typer.Typer(
    name="ferry",
    help="Ferry: GitOps for Docker Compose.",
    no_args_is_help=True,
    add_completion=False,
)
admin_app = typer.Typer(help="Administrative tasks.", no_args_is_help=True)
console = Console()

HomeOption = Annotated[
    Path | None, typer.Option("--home", help="State folder (default: $FERRY_HOME or ./.ferry).")
]


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Port of the API on 127.0.0.1.")] = 8080,
    home: HomeOption = None,
    deploy_timeout: Annotated[
        int, typer.Option(help="Seconds a deploy may wait for its agent.")
    ] = 900,
    heartbeat: Annotated[
        int, typer.Option(help="Seconds an agent may stay silent mid-deploy.")
    ] = 60,
) -> None:
    """Start the local stack (moto, API, sample app, local agent) and keep it running."""
    from ferry.local.cloud import LocalOptions
    from ferry.local.home import default_home
    from ferry.local.stack import LocalStack
    from ferry.local.watch import StatusPrinter

    stack = LocalStack(
        LocalOptions(
            home=home or default_home(),
            api_port=port,
            deploy_timeout_seconds=deploy_timeout,
            deploy_heartbeat_seconds=heartbeat,
        ),
        echo_agent=lambda line: console.print(f"[dim]agent │ {line}[/dim]", highlight=False),
    )
    # Ctrl-C from here on means "stop cleanly", also while the stack is still starting.
    stopped = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with console.status("Starting the local stack…"):
        started = time.monotonic()
        try:
            state = stack.start()
        except OSError as exc:
            fail(f"could not start: {exc}")
    _print_banner(stack, state, time.monotonic() - started)
    printer = StatusPrinter(lambda line: console.print(Text(printable(line)), highlight=False))
    while not stopped.wait(1.0):
        printer.tick()
    console.print("Stopping (data is kept)…")
    stack.stop()


def _print_banner(stack: Any, state: Any, seconds: float) -> None:
    home = stack.home
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # ids, tokens and paths are copied: never cut them short
    table.add_row("API", f"{state.api_url}  (OpenAPI docs: {state.api_url}/docs)")
    table.add_row("token", state.token)
    table.add_row("config", str(home / "local.json"))
    table.add_row("AWS (moto)", stack.cloud.moto.url)
    table.add_row("agent", f"local  (log: {home / 'logs' / 'agent.log'})")
    table.add_row("sample repo", f"{state.sample_path}  ({state.sample_repository.id})")
    table.add_row("sample image", state.sample_image_note)
    recovered = stack.cloud.recovery.summary() if stack.cloud.recovery else None
    if recovered:
        table.add_row("after restart", recovered)
    table.add_row(
        "application",
        f"{state.sample_application.name}  ({state.sample_application.path} on "
        f"{state.sample_application.branch})",
    )
    console.print(f"[bold green]Ferry local stack is up[/bold green] in {seconds:.1f} s")
    console.print(table)
    # One unbroken line to click; the token rides in the fragment, never sent to the server.
    console.print(
        f"Web page: {state.api_url}/#token={state.token}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    console.print("Commit to the sample repo, then tell Ferry (or use `ferry repo sync`):")
    # soft_wrap: one line however narrow the terminal, so it can be copied and pasted as is.
    console.print(
        f'  curl -X POST -H "Authorization: Bearer $(cat {home / "sample-webhook.secret"})" '
        f"{state.api_url}/api/v1/webhooks/repositories/{state.sample_repository.id}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    console.print("Ctrl-C stops it; everything is kept under", str(home))


@app.command()
def demo(
    home: HomeOption = None,
    timeout: Annotated[int, typer.Option(help="Seconds to wait for the sample deploy.")] = 110,
    keep: Annotated[bool, typer.Option(help="Keep the demo's state folder.")] = False,
) -> None:
    """Run the whole flow once, non-interactively: stack up, sample deployed, summary, exit."""
    from ferry.local.demo import run_demo

    scratch = home is None
    folder = home or Path(tempfile.mkdtemp(prefix="ferry-demo-"))
    try:
        ok = run_demo(folder, timeout_seconds=timeout, say=typer.echo)
    finally:
        if scratch and not keep:
            shutil.rmtree(folder, ignore_errors=True)
    raise typer.Exit(0 if ok else 1)


token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
admin_app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="Who or what the token is for.")] = "admin",
) -> None:
    """Mint an API token straight in the tokens table (AWS credentials of the deployment, or the
    FERRY_API_TOKENS_TABLE / AWS_* environment); prints it once."""
    from ferry.errors import FerryError
    from ferry.store.tokens import create_api_token

    try:
        print(create_api_token(name))
    except FerryError as exc:
        fail(str(exc))


@admin_app.command("rotate-key")
def rotate_key(
    home: HomeOption = None,
    aws: Annotated[
        bool, typer.Option("--aws", help="Rotate the deployed stack's key (Secrets Manager).")
    ] = False,
    secret_arn: Annotated[
        str | None,
        typer.Option(help="The stack's secret (default: $FERRY_SECRET_KEY_SECRET_ARN)."),
    ] = None,
) -> None:
    """Re-encrypt every secret and recompute the name index under a new key. Locally, stop
    `ferry up` first; with --aws, run it with credentials for the deployed stack. Safe to run
    again, also after an interrupted run."""
    from ferry.errors import FerryError

    with console.status("Re-encrypting under a new key…"):
        try:
            if aws:
                from ferry.manage.key_rotation import rotate_secrets_manager_key
                from ferry.settings import get_settings

                arn = secret_arn or get_settings().secret_key_secret_arn
                if not arn:
                    fail(
                        "no secret to rotate: pass --secret-arn or set FERRY_SECRET_KEY_SECRET_ARN"
                    )
                report = rotate_secrets_manager_key(str(arn))
            else:
                from ferry.local.home import default_home
                from ferry.local.keys import rotate_local_key

                report = rotate_local_key(home or default_home())
        except FerryError as exc:
            fail(str(exc))
    console.print(
        f"Key rotated: {report.rows_reencrypted} records re-encrypted, "
        f"{report.guards_moved} name guards moved."
    )


@admin_app.command("generate-key")
def generate_key() -> None:
    """Print a new FERRY_SECRET_KEY / SecretKey (32 random bytes, URL-safe base64)."""
    from ferry.security.crypto import generate_key as new_key

    print(new_key())


# Registered last so that `ferry --help` lists the local stack first, then the resources.
app.command()(status)
app.command()(watch)
app.add_typer(repos.app, name="repo")
app.add_typer(apps.app, name="app")
app.add_typer(agents.app, name="agent")
app.add_typer(notify.app, name="notify")
app.add_typer(admin_app, name="admin")


def main() -> None:
    # The local stack runs the Lambda handlers in this process: keep their JSON logs to warnings
    # unless asked (FERRY_LOG_LEVEL=INFO), so the terminal shows what a person wants to read.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", os.environ.get("FERRY_LOG_LEVEL", "WARNING"))
    # Their CloudWatch metrics (EMF lines) likewise, unless the log level asks for detail.
    os.environ.setdefault(
        "POWERTOOLS_METRICS_DISABLED",
        "false" if os.environ["POWERTOOLS_LOG_LEVEL"] in ("DEBUG", "INFO") else "true",
    )
    app()
