"""Typer commands over a host's HTTP API: `loophost sessions ...`, `loophost apply`, `loophost agents export`.

They take the base URL and key as `loophost run` does (`--base-url` / ANTHROPIC_BASE_URL, else api.anthropic.com;
`--api-key` / ANTHROPIC_API_KEY), open one `ClaudeManagedAgents` host for the command, and turn the client's
errors into a message and exit status 1.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import typer

sessions_app = typer.Typer(name="sessions", help="Sessions on a host: list, show, tail, connect.", no_args_is_help=True)
agents_app = typer.Typer(name="agents", help="Agents as code: export (and `loophost apply`).", no_args_is_help=True)

BaseUrl = typer.Option(
    None, help="A loophost server or the Claude API (default: ANTHROPIC_BASE_URL, else api.anthropic.com)."
)
ApiKey = typer.Option(None, help="API key (default: ANTHROPIC_API_KEY).", envvar="ANTHROPIC_API_KEY")


def _on_host(
    base_url: str | None, api_key: str | None, command: Callable[..., Awaitable[int]], *args: object, **kwargs: object
) -> None:
    """Run `command(host, console, *args)` on an open host; exit with its status, or 1 on a client error."""
    from rich.console import Console

    from .._aio import run
    from ..client import ClaudeManagedAgents, ClientError

    console = Console()

    async def main() -> int:
        async with ClaudeManagedAgents(api_key=api_key, base_url=base_url) as host:
            return await command(host, console, *args, **kwargs)

    try:
        code = run(main())
    except ClientError as exc:
        console.print(f"[red]error[/]: {exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    raise typer.Exit(code)


@sessions_app.command("list")
def sessions_list(
    status: str | None = typer.Option(
        None, help="Only sessions in this status (idle, running, rescheduling, terminated)."
    ),
    agent: str | None = typer.Option(None, "--agent", help="Only sessions of this agent id."),
    limit: int = typer.Option(20, help="How many (newest first)."),
    base_url: str | None = BaseUrl,
    api_key: str | None = ApiKey,
) -> None:
    """The newest sessions: status, agent, title, tokens, created."""
    from ._sessions import list_sessions

    _on_host(base_url, api_key, list_sessions, status=status, agent_id=agent, limit=limit)


@sessions_app.command("show")
def sessions_show(
    session_id: str = typer.Argument(..., help="The session id."),
    as_json: bool = typer.Option(False, "--json", help="Print the session document as JSON."),
    base_url: str | None = BaseUrl,
    api_key: str | None = ApiKey,
) -> None:
    """One session: status, agent, usage, and what it waits for."""
    from ._sessions import show_session

    _on_host(base_url, api_key, show_session, session_id, as_json=as_json)


@sessions_app.command("tail")
def sessions_tail(
    session_id: str = typer.Argument(..., help="The session id."),
    replay: bool = typer.Option(True, "--replay/--no-replay", help="Print the log so far first."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Every event, spans and statuses too."),
    base_url: str | None = BaseUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Print the session's events as they happen (replay, then live) until it ends; Ctrl-C stops."""
    from ._sessions import tail_session

    _on_host(base_url, api_key, tail_session, session_id, replay=replay, verbose=verbose)


@sessions_app.command("connect")
def sessions_connect(
    session_id: str = typer.Argument(..., help="The session id."),
    base_url: str | None = BaseUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Follow a session live and steer it: Enter sends a message, Esc interrupts, y/n answers confirmations."""
    from ._sessions import connect_session

    _on_host(base_url, api_key, connect_session, session_id)


@agents_app.command("export")
def agents_export(
    agent_id: str = typer.Argument(..., help="The agent id."),
    version: int | None = typer.Option(None, help="A past version (default: the latest)."),
    base_url: str | None = BaseUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Print the agent as YAML that `loophost apply -f` takes."""
    from ._agents_yaml import export_agent

    _on_host(base_url, api_key, export_agent, agent_id, version=version)


def apply(
    file: str = typer.Option(..., "--file", "-f", help="The YAML file of agents and environments (`-`: stdin)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change; change nothing."),
    base_url: str | None = BaseUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Create or update the agents and environments a YAML file declares (a new agent version only when
    something changed), and print what changed."""
    from ._agents_yaml import apply_file

    _on_host(base_url, api_key, apply_file, file, dry_run=dry_run)
