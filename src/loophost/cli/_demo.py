"""`loophost demo`: the embedded runtime end to end, with nothing to configure.

An agent on the scripted model (no API key) with a custom tool; the demo plays the client's part: it streams the
session, runs the custom tool locally when the session asks for it, and sends the result back.
"""

from __future__ import annotations

import asyncio
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .. import wire
from ..runtime import DEFAULT_WORKSPACE, Runtime, StoredEvent

WS = DEFAULT_WORKSPACE
PROMPTS = [
    "Hello from the loophost demo! This reply streams from the built-in scripted model.",
    'call machine_info {"field": "python"}\ncall machine_info {"field": "system"}',
]
TOOL = {
    "type": "custom",
    "name": "machine_info",
    "description": "Facts about the machine the client runs on (runs locally, on your side).",
    "input_schema": {"type": "object", "properties": {"field": {"type": "string"}}, "required": ["field"]},
}


def machine_info(field: str) -> str:
    """The demo's custom tool: it runs here, in the client, never in the runtime."""
    facts = {"python": platform.python_version(), "system": f"{platform.system()} {platform.machine()}"}
    return facts.get(field, f"unknown field {field!r}")


def _summary(data: dict[str, Any]) -> str:
    kind = data["type"]
    if kind == "agent.message":
        return "".join(block.get("text", "") for block in data["content"])
    if kind in ("agent.custom_tool_use", "agent.tool_use"):
        return f"{data['name']}({json.dumps(data['input'])})"
    if kind == "session.status_idle":
        return json.dumps(data["stop_reason"])
    if kind == "user.custom_tool_result":
        return "".join(block.get("text", "") for block in data.get("content") or [])
    if kind == "span.model_request_end":
        usage = data["model_usage"]
        return f"tokens in {usage['input_tokens']}, out {usage['output_tokens']}"
    if kind == "user.message":
        text = "".join(block.get("text", "") for block in data["content"])
        return text.replace("\n", " | ")
    return ""


async def _drive(rt: Runtime, session_id: str, prompt: str, console: Console) -> list[StoredEvent]:
    """Send one prompt and follow the session to the end of the turn, answering custom tools on the way."""
    after = await rt.store.last_seq(session_id) or 0
    await rt.send_events(
        WS,
        session_id,
        [
            wire.UserMessageParams.model_validate(
                {"type": "user.message", "content": [{"type": "text", "text": prompt}]}
            )
        ],
    )
    seen: list[StoredEvent] = []
    streaming = False
    async for item in rt.stream_events(WS, session_id, after_seq=after, previews=True):
        data = json.loads(item.body)
        if not isinstance(item, StoredEvent):  # a live preview of the message being written
            if data["type"] == "event_delta":
                if not streaming:
                    console.print("  [dim]streaming:[/] ", end="")
                    streaming = True
                console.print(data["delta"]["content"]["text"], end="", style="dim")
            continue
        if streaming:
            console.print()
            streaming = False
        seen.append(item)
        console.print(f"  [green]#{item.seq:<3}[/] {item.type:<26} {_summary(data)}")
        if item.type == "session.status_idle":
            reason = data["stop_reason"]
            if reason["type"] != "requires_action":
                break
            uses = {e["id"]: e for e in (json.loads(s.body) for s in seen) if e["type"] == "agent.custom_tool_use"}
            results = []
            for event_id in reason["event_ids"]:
                use = uses[event_id]
                answer = machine_info(**use["input"])
                console.print(f"  [cyan]client runs {use['name']}({use['input']}) locally -> {answer!r}[/]")
                results.append(
                    wire.UserCustomToolResultParams.model_validate(
                        {
                            "type": "user.custom_tool_result",
                            "custom_tool_use_id": event_id,
                            "content": [{"type": "text", "text": answer}],
                        }
                    )
                )
            await rt.send_events(WS, session_id, results)
        elif item.type == "session.status_terminated":
            break
    return seen


async def run_demo(database: Path | None, *, console: Console | None = None) -> int:
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="loophost-demo-") as tmp:
        path = database or Path(tmp) / "loophost-demo.db"
        console.print(f"[bold]loophost demo[/]: the embedded runtime on SQLite [cyan]{path}[/], scripted model")
        async with Runtime.from_url(path) as rt:
            agent = await rt.create_agent(
                WS,
                wire.AgentCreateParams.model_validate(
                    {"name": "demo-agent", "model": "scripted", "system": "You are the demo agent.", "tools": [TOOL]}
                ),
            )
            env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name=f"demo-{agent.id}"))
            session = await rt.start_session(
                WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id, title="demo")
            )
            console.print(f"agent [cyan]{agent.id}[/], session [cyan]{session.id}[/]\n")
            streamed: list[StoredEvent] = []
            for prompt in PROMPTS:
                console.rule(f"[bold]user[/]: {prompt.splitlines()[0]}")
                streamed += await asyncio.wait_for(_drive(rt, session.id, prompt, console), timeout=30)
            page = await rt.list_events(WS, session.id)
            table = Table(title=f"The durable log of {session.id}")
            for column in ("seq", "type", "processed_at"):
                table.add_column(column)
            for event in page.data:
                table.add_row(str(event.seq), event.type, event.processed_at or "(queued)")
            console.print(table)
            final = await rt.get_session(WS, session.id)
            console.print(
                f"session {final.status}; usage: {final.usage.input_tokens} input / "
                f"{final.usage.output_tokens} output tokens"
            )
            if [e.id for e in streamed] != [e.id for e in page.data]:
                console.print("[red]the stream and the stored log disagree[/]")
                return 1
            console.print("[bold green]ok[/]: every event streamed live is in the durable log, in the same order.")
    return 0
