"""Outcomes and the budget stop in the client: `loophost.run(..., outcome=Outcome(...))` on a real runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

import loophost
from loophost.client import TurnInput
from loophost.client.providers._cma import input_events, normalize


def test_run_with_an_outcome_reports_every_grading(tmp_path: Path) -> None:
    outcome = loophost.Outcome("write a haiku", "verdict needs_revision count the syllables\nverdict satisfied good")
    result = loophost.run(loophost.Local(tmp_path / "outcome.db"), model="scripted", outcome=outcome)
    assert result.ok
    assert [(e.iteration, e.result, e.explanation) for e in result.outcome_evaluations] == [
        (0, "needs_revision", "count the syllables"),
        (1, "satisfied", "good"),
    ]
    assert result.outcome_evaluations[0].outcome_id.startswith("outc_")
    assert not result.budget_reached


async def test_providers_without_outcomes_refuse_one() -> None:
    class NoOutcomes:
        name = "plain"

    session = loophost.Session(NoOutcomes())  # type: ignore[arg-type]
    with pytest.raises(loophost.ClientError, match="no outcomes"):
        await session.send(outcome=loophost.Outcome("d", "r"))


def test_outcome_input_and_budget_stop_on_the_wire() -> None:
    events = input_events(TurnInput(text="context first", outcome=loophost.Outcome("d", "r", max_iterations=2)))
    assert [e["type"] for e in events] == ["user.message", "user.define_outcome"]
    assert events[1]["rubric"] == {"type": "text", "content": "r"} and events[1]["max_iterations"] == 2
    turn = normalize(
        [
            {"id": "e1", "type": "session.usage", "usage": {}, "budget": None},
            {"id": "e2", "type": "session.status_idle", "stop_reason": {"type": "budget_reached"}},
        ]
    )
    result = loophost.SessionResult(terminal=turn.terminal, stop_reason=turn.stop_reason, session_id="s")
    assert result.budget_reached
    assert not result.ok


def test_a_cross_posted_call_names_its_thread() -> None:
    turn = normalize(
        [
            {"id": "c1", "type": "agent.custom_tool_use", "name": "lookup", "input": {}, "session_thread_id": "sthr_1"},
            {
                "id": "i1",
                "type": "session.status_idle",
                "stop_reason": {"type": "requires_action", "event_ids": ["c1"]},
            },
        ]
    )
    (use,) = turn.tool_uses
    assert (use.id, use.thread) == ("c1", "sthr_1")


async def test_the_handler_answers_a_threads_custom_tool(tmp_path: Path) -> None:
    """A coordinator's child thread calls a client tool: it is cross-posted, and the same handler answers it."""
    from loophost import wire

    @loophost.tool
    def lookup(q: str) -> str:
        "Looks a thing up."
        return f"found {q}"

    async with loophost.Local(tmp_path / "team.db") as local:
        rt = local.runtime
        tool = {"type": "custom", "name": "lookup", "description": "d", "input_schema": {"type": "object"}}
        researcher = await rt.create_agent(
            "default",
            wire.AgentCreateParams.model_validate({"name": "researcher", "model": "scripted", "tools": [tool]}),
        )
        lead = await rt.create_agent(
            "default",
            wire.AgentCreateParams.model_validate(
                {"name": "lead", "model": "scripted", "multiagent": {"type": "coordinator", "agents": [researcher.id]}}
            ),
        )
        prompt = 'call send_to_agent {"agent": "researcher", "message": "call lookup {\\"q\\": \\"tides\\"}"}'
        result = await loophost.arun(local, agent_id=lead.id, handler=[lookup], prompt=prompt)
    assert result.ok, result.stop_reason
    assert result.text == "send_to_agent: lookup: found tides"
    (use,) = result.tool_uses
    assert use.name == "lookup"
    assert use.thread is not None and use.thread.startswith("sthr_")
