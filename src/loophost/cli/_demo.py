"""`loophost demo`: the embedded runtime end to end, with nothing to configure."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .. import wire
from ..runtime import DEFAULT_WORKSPACE, Runtime, StoredEvent

PROMPT = "Hello from the loophost demo!\nThis session is durable: every event below is in SQLite."


def _summary(event: StoredEvent) -> str:
    data = json.loads(event.body)
    data.pop("id", None)
    data.pop("type", None)
    data.pop("processed_at", None)
    text = json.dumps(data, separators=(",", ":"))
    return text if len(text) <= 100 else text[:97] + "..."


async def run_demo(database: Path | None, *, console: Console | None = None) -> int:
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="loophost-demo-") as tmp:
        path = database or Path(tmp) / "loophost-demo.db"
        console.print(f"[bold]loophost demo[/] — embedded runtime on SQLite [cyan]{path}[/]")
        async with Runtime.from_url(path) as rt:
            ws = DEFAULT_WORKSPACE
            agent = await rt.create_agent(
                ws,
                wire.AgentCreateParams(name="demo-agent", model="scripted", system="You are the demo agent."),
            )
            env = await rt.create_environment(
                ws, wire.EnvironmentCreateParams(name=f"demo-{agent.id}", config={"type": "cloud"})
            )
            session = await rt.start_session(
                ws, wire.SessionCreateParams(agent=agent.id, environment_id=env.id, title="demo")
            )
            console.print(f"agent [cyan]{agent.id}[/] (model {agent.model.id}), session [cyan]{session.id}[/]")

            streamed: list[StoredEvent] = []
            first_seen = asyncio.Event()

            async def watch() -> None:
                async for event in rt.stream_events(ws, session.id, after_seq=0):
                    streamed.append(event)
                    console.print(f"  [green]stream[/] #{event.seq:<3} {event.type:<28} {_summary(event)}")
                    first_seen.set()

            async with asyncio.TaskGroup() as tasks:
                watcher = tasks.create_task(watch())
                message = wire.UserMessageParams(type="user.message", content=[{"type": "text", "text": PROMPT}])
                (echo,) = await rt.send_events(ws, session.id, [message])
                console.print(f"sent user.message [cyan]{echo.id}[/]")
                await asyncio.wait_for(first_seen.wait(), timeout=10)
                await asyncio.sleep(0.2)  # let anything already committed reach the stream
                watcher.cancel()

            table = Table(title=f"Stored log of {session.id}")
            for column in ("seq", "id", "type", "processed_at"):
                table.add_column(column)
            page = await rt.list_events(ws, session.id)
            for event in page.data:
                table.add_row(str(event.seq), event.id, event.type, event.processed_at or "(queued)")
            console.print(table)
            status = await rt.status(ws, session.id)
            console.print(f"session status: [bold]{status.status}[/], queued inputs: {status.queued}")
            stored_ids = [e.id for e in page.data]
            if [e.id for e in streamed] != stored_ids:
                console.print("[red]the stream and the stored log disagree[/]")
                return 1
            console.print("[bold green]ok[/]: the stream delivered exactly the stored log, in order.")
    return 0
