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
def serve() -> None:
    """Serve the runtime over the Claude Managed Agents HTTP API."""
    typer.echo(
        "loophost serve: the HTTP server is not part of this build yet (tracked as the [server] issue). "
        "Use the runtime as a library meanwhile: see README.md.",
        err=True,
    )
    raise typer.Exit(2)


def main() -> None:
    app()
