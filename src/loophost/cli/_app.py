"""Typer application: `loophost demo`, `loophost serve`, …"""

from __future__ import annotations

from pathlib import Path

import typer

from ._app_hosted import agents_app, apply, sessions_app
from ._webhooks import webhooks_app
from ._worker import environments_app, worker

app = typer.Typer(
    name="loophost",
    help="One agent session loop, any loop host; your tools run locally.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def demo(
    database: Path | None = typer.Option(
        None, help="SQLite file for the demo server's sessions (default: a temporary file)."
    ),
) -> None:
    """A server in the background, a live session through the Claude provider against it, then the same on Local."""
    from .._aio import run
    from ._demo import run_demo

    raise typer.Exit(run(run_demo(database)))


@app.command(name="run")
def run_command(
    prompt: str = typer.Argument(..., help="What to ask the agent."),
    base_url: str | None = typer.Option(
        None, help="A loophost server or the Claude API (default: ANTHROPIC_BASE_URL, else api.anthropic.com)."
    ),
    api_key: str | None = typer.Option(None, help="API key (default: ANTHROPIC_API_KEY).", envvar="ANTHROPIC_API_KEY"),
    local: str | None = typer.Option(
        None, help="Run on the embedded runtime instead: a SQLite file, or ':memory:'.", show_default=False
    ),
    agent: str | None = typer.Option(None, "--agent", help="The agent id to run."),
    model: str | None = typer.Option(None, help="Or a model: an agent is provisioned for it (e.g. scripted)."),
    system: str | None = typer.Option(None, help="System prompt of the provisioned agent (with --model)."),
    environment: str | None = typer.Option(None, help="Environment id (default: one provisioned for you)."),
    session: str | None = typer.Option(None, help="Attach to an existing session instead of creating one."),
    tools: str | None = typer.Option(None, help="Local tools: MODULE:ATTRIBUTE naming a handler or a tool list."),
    timeout: float = typer.Option(600.0, help="Seconds before giving up (the session stays alive on the host)."),
    max_turns: int = typer.Option(50, help="Turns allowed for this prompt."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Allow every tool that asks for confirmation."),
) -> None:
    """Run a prompt on a host and render the session live; exit 0 on end_turn, 3 on another terminal, 1 on error."""
    from rich.console import Console

    from .._aio import run
    from ..client import ClientError
    from ._run import make_provider, run_prompt

    console = Console()
    if agent is None and model is None and session is None:
        console.print("[red]error[/]: say what runs the session: --agent ID, --model MODEL or --session ID")
        raise typer.Exit(2)
    try:
        provider = make_provider(base_url, api_key, local)
        code = run(
            run_prompt(
                prompt,
                provider=provider,
                agent_id=agent,
                model=model,
                system=system,
                environment_id=environment,
                session_id=session,
                tools=tools,
                timeout=timeout,
                max_turns=max_turns,
                assume_yes=yes,
                console=console,
            )
        )
    except ClientError as exc:
        console.print(f"[red]error[/]: {exc}")
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8420, help="Port to listen on (0: any free port; the line printed says which)."),
    database: str | None = typer.Option(
        None,
        envvar="LOOPHOST_DATABASE_URL",
        help=(
            "Where sessions live: a SQLite file (or sqlite:///path), or postgresql://USER@HOST:PORT/DB "
            "(default: loophost.db in the user's data directory). Several nodes may share one PostgreSQL "
            "database (behind any load balancer); a SQLite file belongs to one process."
        ),
    ),
    heartbeat: float = typer.Option(15.0, help="Seconds between ping frames on idle event streams."),
    workspaces: str | None = typer.Option(
        None,
        help="Directory of the sessions' tool workspaces (default: workspaces/ next to a SQLite database, "
        "else a temporary directory).",
    ),
    console: bool = typer.Option(True, "--console/--no-console", help="Serve the web console at /console."),
    lease_ttl: float = typer.Option(
        15.0,
        min=0.3,
        help="PostgreSQL: seconds a node's lease on an active session lasts without renewal; a node that dies "
        "hands its sessions to the others after this long (see docs/deploy.md).",
    ),
    unsafe_no_sandbox: bool = typer.Option(
        False,
        "--unsafe-no-sandbox",
        help="Run built-in tools even when no working sandbox (bubblewrap) is found, in the weaker fallback that "
        "does not hide the host's files, processes or network. Without it such a server refuses the tools.",
    ),
    webhooks_allow_private: bool = typer.Option(
        False,
        "--webhooks-allow-private",
        help="Deliver webhooks to private, loopback and link-local addresses and over plain http (refused "
        "without it, against SSRF); for receivers on this host or network.",
    ),
    otlp_endpoint: str | None = typer.Option(
        None,
        help="Export spans over OTLP/HTTP to this collector (base URL; spans go to URL/v1/traces). The standard "
        "OTEL_* variables work too. Needs the loophost[otel] extra.",
    ),
    metrics: bool = typer.Option(True, "--metrics/--no-metrics", help="Serve Prometheus metrics at /metrics (no key)."),
    metrics_port: int | None = typer.Option(
        None, help="Serve /metrics on this port instead of the API's (0: any free port; the line printed says which)."
    ),
    log_format: str = typer.Option("text", help="Logs on stderr: text (for a terminal) or json (one object a line)."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Serve the runtime over the Claude Managed Agents HTTP API (keys: LOOPHOST_API_KEYS=KEY[:WORKSPACE],...)."""
    from .._aio import run
    from ._serve import default_database
    from ._serve import serve as serve_forever
    from ._telemetry import ServeTelemetry

    if log_format not in ("text", "json"):
        raise typer.BadParameter("text or json", param_hint="--log-format")
    telemetry = ServeTelemetry(otlp_endpoint, metrics, metrics_port, log_format, log_level)  # type: ignore[arg-type]

    run(
        serve_forever(
            host,
            port,
            database or default_database(),
            heartbeat,
            workspaces,
            console=console,
            lease_ttl=lease_ttl,
            unsafe_no_sandbox=unsafe_no_sandbox,
            webhooks_allow_private=webhooks_allow_private,
            telemetry=telemetry,
        )
    )


@app.command(name="vault-key")
def vault_key() -> None:
    """Print a new vault key (32 random bytes, base64url) for LOOPHOST_VAULT_KEY; see docs/vaults.md."""
    from ..runtime import new_vault_key

    print(new_vault_key())


app.add_typer(sessions_app)
app.add_typer(agents_app)
app.add_typer(environments_app)
app.add_typer(webhooks_app)
app.command(name="worker")(worker)
app.command(name="apply")(apply)


def main() -> None:
    app()
