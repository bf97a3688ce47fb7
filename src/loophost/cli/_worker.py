"""`loophost worker` (serve a self-hosted environment's sessions on this machine) and `loophost environments key`
(mint an environment key). Thin: `loophost.Worker` and one API call do the work."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import typer

environments_app = typer.Typer(
    name="environments", help="Environments on a host: keys for workers.", no_args_is_help=True
)


def worker(
    environment: str = typer.Option(..., "--environment", help="The self-hosted environment to serve (env_...)."),
    environment_key: str = typer.Option(
        ..., "--environment-key", envvar="ANTHROPIC_ENVIRONMENT_KEY", help="The environment's key (not an API key)."
    ),
    base_url: str | None = typer.Option(
        None, help="A loophost server or the Claude API (default: ANTHROPIC_BASE_URL, else api.anthropic.com)."
    ),
    workdir: Path = typer.Option(
        Path("."), help="Each session's files go under WORKDIR/<session id>/fs/workspace (the tools' /workspace)."
    ),
    max_idle: float = typer.Option(60.0, help="Seconds to keep serving a session after its turn ended."),
    unsafe_no_sandbox: bool = typer.Option(
        False, "--unsafe-no-sandbox", help="Run tools without bubblewrap (only on a machine you trust)."
    ),
) -> None:
    """Poll a self-hosted environment and run its sessions' bash and file tools here, until Ctrl-C (the running
    tools finish, their results are posted, and each item is stopped; a second Ctrl-C quits at once)."""
    from rich.console import Console

    from .._aio import run
    from ..client import Worker

    console = Console(stderr=True, highlight=False)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        worker = Worker(
            environment_id=environment,
            environment_key=environment_key,
            base_url=base_url,
            workdir=workdir,
            max_idle=max_idle,
            unsafe_no_sandbox=unsafe_no_sandbox,
            on_progress=lambda line: console.print(f"[dim]worker[/] {line}"),
        )
        task = asyncio.current_task()

        def graceful() -> None:
            if worker.stopping:
                assert task is not None
                task.cancel()  # the second signal: at once
                return
            console.print("[dim]worker[/] stopping: finishing the running tools (again to quit at once)")
            worker.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, graceful)
        try:
            await worker.run()
        except Exception as exc:
            console.print(f"[red]error[/]: {exc}")
            return 1
        return 0

    try:
        code = run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        code = 130
    raise typer.Exit(code)


@environments_app.command("key")
def environment_key(
    environment_id: str = typer.Argument(..., help="The self-hosted environment (env_...)."),
    base_url: str | None = typer.Option(
        None, help="A loophost server (default: ANTHROPIC_BASE_URL, else api.anthropic.com)."
    ),
    api_key: str | None = typer.Option(None, help="API key (default: ANTHROPIC_API_KEY).", envvar="ANTHROPIC_API_KEY"),
) -> None:
    """Create a key for the environment's workers and print it: this is the only time it is shown."""
    from .._aio import run
    from ..client import ClaudeManagedAgents, ClientError

    async def main() -> str:
        async with ClaudeManagedAgents(api_key=api_key, base_url=base_url) as host:
            answer = await host.request("POST", f"/v1/environments/{environment_id}/keys")
            return str(answer["key"])

    try:
        print(run(main()))
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
