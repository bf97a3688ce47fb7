"""Restarts of the runtime (close, reopen) at the points that matter, deterministically."""

from __future__ import annotations

import asyncio
from pathlib import Path

from loophost.runtime import AgentLoopConfig, Runtime

from ..conftest import WS
from ._driver import custom_result, final_text, last_seq, message, of_type, turn, wait_for
from .conftest import LOOKUP, TOOLSET, CountingTool, session_with


def _runtime(path: Path, bash: CountingTool) -> Runtime:
    return Runtime.from_url(path, builtin_tools={"bash": bash}, agent_loop=AgentLoopConfig(retry_backoff=0.01))


async def test_a_parked_custom_tool_survives_a_restart(tmp_path: Path) -> None:
    bash = CountingTool()
    async with _runtime(tmp_path / "r.db", bash) as rt:
        sid = await session_with(rt, tools=[LOOKUP])
        events = await turn(rt, sid, message("call lookup {}"))
        (use,) = of_type(events, "agent.custom_tool_use")
    async with _runtime(tmp_path / "r.db", bash) as rt:
        state = await rt.status(WS, sid)
        assert state.status == "idle" and state.pending_event_ids == (use["id"],)
        done = await turn(rt, sid, custom_result(use["id"], "after restart"))
        assert final_text(done) == "lookup: after restart"


async def test_a_tool_cut_off_by_a_shutdown_is_reported_not_run_again(tmp_path: Path) -> None:
    bash = CountingTool()
    async with _runtime(tmp_path / "r.db", bash) as rt:
        sid = await session_with(rt, tools=[TOOLSET])
        after = await last_seq(rt, sid)
        await rt.send_events(WS, sid, [message('call bash {"command": "sleep 30"}')])
        await wait_for(rt, sid, after, stop=["agent.tool_use"])
        while not bash.executions:
            await asyncio.sleep(0.01)
    # closing cancelled the tool mid-run; the session is still running in the store
    async with _runtime(tmp_path / "r.db", bash) as rt:
        events = await wait_for(rt, sid, after)
        (result,) = of_type(events, "agent.tool_result")
        assert result["is_error"] is True and "interrupted by a restart" in result["content"][0]["text"]
        assert final_text(events).startswith("bash failed: The tool call was interrupted by a restart")
        assert len(bash.executions) == 1  # never run again
        assert final_text(await turn(rt, sid, message("still here?"))) == "echo: still here?"


async def test_auto_policy_asks_and_says_why(tmp_path: Path) -> None:
    async with _runtime(tmp_path / "r.db", CountingTool()) as rt:
        toolset = {"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "auto"}}}
        sid = await session_with(rt, tools=[toolset])
        events = await turn(rt, sid, message('call bash {"command": "ls"}'))
        (use,) = of_type(events, "agent.tool_use")
        assert use["evaluated_permission"] == "ask"
        assert use["evaluation"] == {
            "type": "auto",
            "evaluated_permission": {"type": "ask", "reason_code": "no_policy_engine"},
        }
        assert events[-1]["stop_reason"] == {"type": "requires_action", "event_ids": [use["id"]]}


async def test_input_accepted_before_a_worker_took_it_is_processed_after_a_restart(tmp_path: Path) -> None:
    bash = CountingTool()
    async with _runtime(tmp_path / "r.db", bash) as rt:
        sid = await session_with(rt)
        rt.writer.waker = None  # the process dies before any worker ran
        await rt.send_events(WS, sid, [message("accepted, never started")])
        state = await rt.status(WS, sid)
        assert (state.status, state.queued) == ("running", 0)  # taken into its turn in the commit that accepted it
    async with _runtime(tmp_path / "r.db", bash) as rt:
        events = await wait_for(rt, sid, 0)
        assert final_text(events) == "echo: accepted, never started"
