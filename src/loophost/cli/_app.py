"""Typer application: `loophost demo`, `loophost serve`, …"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    name="loophost",
    help="One agent session loop, any loop host; your tools run locally.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def demo(
    database: Path | None = typer.Option(
        None, help="SQLite file to keep the demo's sessions in (default: a temporary file)."
    ),
) -> None:
    """Run a session on the embedded runtime (SQLite + scripted model, no API key) and show its events."""
    from .._aio import run
    from ._demo import run_demo

    raise typer.Exit(run(run_demo(database)))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8420, help="Port to listen on (0: any free port; the line printed says which)."),
    database: str | None = typer.Option(
        None, help="Database URL or SQLite file (default: loophost.db in the user's data directory)."
    ),
    heartbeat: float = typer.Option(15.0, help="Seconds between ping frames on idle event streams."),
) -> None:
    """Serve the runtime over the Claude Managed Agents HTTP API (keys: LOOPHOST_API_KEYS=KEY[:WORKSPACE],...)."""
    from .._aio import run
    from ._serve import default_database
    from ._serve import serve as serve_forever

    run(serve_forever(host, port, database or default_database(), heartbeat))


def main() -> None:
    app()
