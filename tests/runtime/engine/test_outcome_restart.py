"""Outcomes and budgets across a restart of the runtime (close, reopen): where they stand is in the store."""

from __future__ import annotations

from pathlib import Path

from loophost import wire
from loophost.runtime import AgentLoopConfig, Runtime

from ..conftest import WS
from ._driver import last_seq, message, of_type, wait_for
from .conftest import CountingTool, session_with


def _runtime(path: Path) -> Runtime:
    return Runtime.from_url(
        path, builtin_tools={"bash": CountingTool()}, agent_loop=AgentLoopConfig(retry_backoff=0.01)
    )


def _outcome(rubric: str) -> wire.UserDefineOutcomeParams:
    return wire.UserDefineOutcomeParams.model_validate(
        {"type": "user.define_outcome", "description": "go", "rubric": {"type": "text", "content": rubric}}
    )


async def test_a_grading_cut_off_by_a_shutdown_is_done_again_from_its_span(tmp_path: Path) -> None:
    async with _runtime(tmp_path / "r.db") as rt:
        sid = await session_with(rt)
        await rt.send_events(WS, sid, [_outcome("sleep 6000\nverdict needs_revision again")])
        # the agent's own turn sleeps too (the rubric is in its prompt): wait for the grading to start
        await wait_for(rt, sid, 0, stop=["span.outcome_evaluation_start"], timeout=60)
    async with _runtime(tmp_path / "r.db") as rt:
        # reopening resumes the grading; the sleeping grader is cut off again by an interrupt
        after = await last_seq(rt, sid)
        await rt.send_events(WS, sid, [wire.UserInterruptParams(type="user.interrupt")])
        events = await wait_for(rt, sid, after)
    (end,) = of_type(events, "span.outcome_evaluation_end")
    assert end["result"] == "interrupted"
    session = await rt_session(tmp_path, sid)
    assert [e.result for e in session.outcome_evaluations] == ["interrupted"]


async def test_a_grading_resumes_after_a_restart(tmp_path: Path) -> None:
    async with _runtime(tmp_path / "r.db") as rt:
        sid = await session_with(rt)
        rt.writer.waker = None  # the process dies before a worker ran: the outcome's turn is taken, not started
        await rt.send_events(WS, sid, [_outcome("verdict needs_revision once")])
    async with _runtime(tmp_path / "r.db") as rt:
        events = await wait_for(rt, sid, 0)
        assert [(e["iteration"], e["result"]) for e in of_type(events, "span.outcome_evaluation_end")] == [
            (0, "needs_revision"),
            (1, "satisfied"),
        ]


async def test_a_session_paused_at_its_budget_stays_paused_and_resumes(tmp_path: Path) -> None:
    budget = wire.Budget.model_validate({"type": "limit", "max_list_cost": {"amount": "1", "currency": "USD"}})
    async with _runtime(tmp_path / "r.db") as rt:
        agent = await rt.create_agent(WS, wire.AgentCreateParams(name="a", model="scripted"))
        env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="env"))
        created = await rt.start_session(
            WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id, budget=budget)
        )
        sid = created.id
        await rt.send_events(WS, sid, [message("one")])
        await wait_for(rt, sid, 0)
        after = await last_seq(rt, sid)
        await rt.send_events(WS, sid, [message("two")])
        paused = await wait_for(rt, sid, after)
        assert paused[-1]["stop_reason"] == {"type": "budget_reached"}
    async with _runtime(tmp_path / "r.db") as rt:
        assert (await rt.status(WS, sid)).status == "idle"
        after = await last_seq(rt, sid)
        raised = wire.Budget.model_validate({"type": "limit", "max_list_cost": {"amount": "100000", "currency": "USD"}})
        await rt.update_session(WS, sid, wire.SessionUpdateParams(budget=raised))
        events = await wait_for(rt, sid, after)
        assert [m["content"][0]["text"] for m in of_type(events, "agent.message")] == ["echo: two"]


async def rt_session(path: Path, sid: str) -> wire.Session:
    async with _runtime(path / "r.db") as rt:
        return await rt.get_session(WS, sid)
