"""`loophost demo`: the whole idea in one run, with nothing to configure (no API key).

A loophost server starts in the background on the embedded default (SQLite + the scripted model); the demo
provisions an agent whose custom tool runs here, on this machine; runs a live session through the Claude
provider against that server, rendering it as it goes; runs the same through `Local` (the runtime
in-process); and checks that both hosts gave the same result.
"""

from __future__ import annotations

import platform
import tempfile
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from ..client import AgentSpec, ClaudeManagedAgents, Local, SessionResult, arun, provision, start, tool
from ._background import background_server
from ._render import LiveRenderer

PROMPTS = [
    "Hello from the loophost demo!",
    'call machine_info {"field": "python"}\ncall machine_info {"field": "system"}',
]


@tool
def machine_info(field: str) -> str:
    """Facts about the machine the client runs on (this tool runs locally, on your side).

    Args:
        field: `python` (the Python version) or `system` (OS and architecture).
    """
    facts = {"python": platform.python_version(), "system": f"{platform.system()} {platform.machine()}"}
    if field not in facts:
        raise ValueError(f"unknown field {field!r}; ask for one of {sorted(facts)}")
    return facts[field]


SPEC = AgentSpec(
    name="demo-agent",
    model="scripted",
    system="You are the loophost demo agent.",
    tools=(machine_info,),
)


def _same(a: SessionResult, b: SessionResult) -> bool:
    return (a.terminal, a.text, [u.name for u in a.tool_uses], a.turns) == (
        b.terminal,
        b.text,
        [u.name for u in b.tool_uses],
        b.turns,
    )


async def run_demo(database: Path | None, *, console: Console | None = None) -> int:
    console = console or Console()
    render = LiveRenderer(console, interactive=False)
    with tempfile.TemporaryDirectory(prefix="loophost-demo-") as tmp:
        server_db = str(database or Path(tmp) / "server.db")
        console.print(Panel.fit("[bold]loophost demo[/]: one session loop, any loop host; your tools run locally"))
        async with background_server(server_db) as server:
            console.print(f"1. a loophost server runs in the background at [cyan]{server.url}[/] (SQLite {server_db})")
            claude = ClaudeManagedAgents(api_key=server.api_key, base_url=server.url)
            handle = await provision(claude, SPEC)
            console.print(
                f"2. provisioned agent [cyan]{handle.agent_id}[/] (digest {handle.digest}) with the custom tool "
                "[bold]machine_info[/], which runs in this process\n"
            )
            console.rule("3. a live session through the Claude provider, against that server")
            results: list[SessionResult] = []
            async with start(
                claude,
                agent_id=handle.agent_id,
                handler=[machine_info],
                on_event=render.on_event,
                on_text_delta=render.on_text_delta,
            ) as live:
                for prompt in PROMPTS:
                    console.print(f"[bold]user[/] {prompt.splitlines()[0]}{' …' if chr(10) in prompt else ''}")
                    await live.message(prompt)
                    results.append(await live.next_result())
            over_http = results[-1]
            console.print(
                f"[dim]session {over_http.session_id}: {over_http.terminal}, {over_http.turns} turns, "
                f"{over_http.usage.input_tokens}/{over_http.usage.output_tokens} tokens in/out[/]\n"
            )
        console.rule("4. the same request through Local (the runtime in this process, no HTTP)")
        local = await arun(
            Local(Path(tmp) / "local.db"),
            model="scripted",
            system=SPEC.system,
            handler=[machine_info],
            prompt=PROMPTS[1],
            on_event=render.on_event,
            on_text_delta=render.on_text_delta,
            timeout=60,
        )
    same = _same(over_http, local)
    console.print()
    if not same:
        console.print("[red]the two hosts disagree[/]")
        return 1
    console.print("[bold green]ok[/]: the server and Local gave the same result (terminal, text, tool calls, turns).")
    console.print(
        "\nTo run on Claude Managed Agents instead, set ANTHROPIC_API_KEY, then for example:\n"
        '  [cyan]loophost run --model claude-sonnet-4-6 "Hello from my machine"[/]\n'
        "  [cyan]python examples/claude.py[/]   (a local tool and structured output)"
    )
    return 0
