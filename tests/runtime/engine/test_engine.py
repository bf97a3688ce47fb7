"""What the turn engine promises beyond a single turn: retry prompts for disabled tools, per-session failure
injection, `idle` only when nothing is queued, and writes that grow with what a turn produced."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from loophost.runtime import Runtime, ToolContext, ToolOutput

from ..conftest import WS
from ._driver import final_text, message, of_type, turn, types
from .conftest import CountingTool, session_with

READ_ONLY = {
    "type": "agent_toolset_20260401",
    "default_config": {"enabled": False},
    "configs": [{"name": "read", "enabled": True, "permission_policy": {"type": "always_allow"}}],
}


async def test_a_disabled_tool_called_twice_gets_two_error_results_and_the_session_goes_on(
    loop_rt: Runtime, bash: CountingTool
) -> None:
    disabled_bash = {"type": "agent_toolset_20260401", "configs": [{"name": "bash", "enabled": False}]}
    sid = await session_with(loop_rt, tools=[disabled_bash])
    events = await turn(loop_rt, sid, message('call bash {"command": "a"}\ncall bash {"command": "b"}'))
    uses = of_type(events, "agent.tool_use")
    assert [u["evaluated_permission"] for u in uses] == ["deny", "deny"]
    answer = final_text(events).splitlines()
    assert len(answer) == 2 and all(line.startswith("bash failed: Unknown tool name: 'bash'") for line in answer)
    assert events[-1]["stop_reason"] == {"type": "end_turn"}
    assert bash.executions == []
    assert (await loop_rt.get_session(WS, sid)).status == "idle"
    assert final_text(await turn(loop_rt, sid, message("still here"))) == "echo: still here"


async def test_fail_fatal_applies_to_each_session_that_sends_it(loop_rt: Runtime) -> None:
    first, second = await session_with(loop_rt), await session_with(loop_rt)
    for sid in (first, second):
        events = await turn(loop_rt, sid, message("fail fatal\nsame words"))
        assert types(events)[-2:] == ["session.error", "session.status_terminated"]
        assert (await loop_rt.get_session(WS, sid)).status == "terminated"


async def test_send_then_retrieve_never_reads_idle_while_input_is_queued(loop_rt: Runtime) -> None:
    sid = await session_with(loop_rt)
    for i in range(40):
        await loop_rt.send_events(WS, sid, [message(f"turn {i}")])
        state = await loop_rt.status(WS, sid)
        assert state.status == "running" or state.queued == 0, (i, state)
        assert (await loop_rt.get_session(WS, sid)).status == "running" or state.queued == 0
        while (await loop_rt.status(WS, sid)).status != "idle":
            await asyncio.sleep(0.001)


class Blob:
    """A built-in `read` that returns 100 KB of text (or "ok" when asked for something small)."""

    name = "read"
    description = "Returns 100 KB."
    input_schema: dict[str, Any] = {"type": "object"}
    size = 100_000

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        return ToolOutput("ok" if tool_input.get("small") else "y" * self.size)


def _stored_bytes(path: Path, session_id: str) -> int:
    """Bytes of the session's rows: its events and its history entries."""
    with sqlite3.connect(path) as conn:
        events = conn.execute(
            "SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) FROM events WHERE session_id = ?", (session_id,)
        ).fetchone()[0]
        history = conn.execute(
            "SELECT COALESCE(SUM(LENGTH(body)), 0) FROM checkpoint_entries WHERE session_id = ?", (session_id,)
        ).fetchone()[0]
    return int(events) + int(history)


async def test_bytes_written_per_turn_grow_linearly_with_the_tool_output(tmp_path: Path) -> None:
    written: dict[int, int] = {}
    for k in (2, 8, 16):
        path = tmp_path / f"bytes-{k}.db"
        async with Runtime.from_url(path, builtin_tools={"read": Blob()}) as rt:
            sid = await session_with(rt, tools=[READ_ONLY])
            calls = "\n".join(f'call read {{"n": {i}}}' for i in range(k))
            # the model answers with the results of its last step only: a small one, so what is measured is the tools'
            events = await turn(rt, sid, message(f'{calls}\nthen\ncall read {{"small": true}}'))
            assert len(of_type(events, "agent.tool_result")) == k + 1
        written[k] = _stored_bytes(path, sid)
    output = {k: k * Blob.size for k in written}
    for k, size in written.items():
        assert size <= 1.2 * output[k], (k, size, output[k])  # each result once, plus small envelopes
    # linear: the bytes per call do not grow with the number of calls
    per_call = {k: written[k] / k for k in written}
    assert per_call[16] <= 1.1 * per_call[2], per_call
