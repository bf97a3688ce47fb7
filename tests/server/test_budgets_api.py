"""Session budgets over HTTP with the official SDK (spec-2 §5.3): the create/update rules and their 400 reasons,
the pause at the cap between model requests (`budget_reached`), `session.usage`, and the resume on a raise.

The scripted model's list price is one US cent per token, input and output alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from .conftest import KEY_A, ServerProcess
from .test_events_api import LOOKUP_TOOL, is_idle, message, read_until, uid


@pytest.fixture
def strict(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0, _strict_response_validation=True) as c:
        yield c


def _budget(cents: str) -> Any:
    return {"type": "limit", "max_list_cost": {"amount": cents, "currency": "USD"}}


def _session(client: anthropic.Anthropic, *, budget: Any = None, model: str = "scripted") -> str:
    env = client.beta.environments.create(name=uid("env"))
    agent = client.beta.agents.create(name=uid("agent"), model=model, tools=[LOOKUP_TOOL])  # type: ignore[list-item]
    if budget is None:
        return client.beta.sessions.create(agent=agent.id, environment_id=env.id).id
    return client.beta.sessions.create(agent=agent.id, environment_id=env.id, budget=budget).id


def _reason(err: anthropic.APIStatusError) -> str:
    assert err.status_code == 400
    assert isinstance(err.body, dict)
    return str(err.body["error"]["details"]["error_code"])


def test_create_rules(strict: anthropic.Anthropic) -> None:
    sid = _session(strict, budget=_budget("2500"))
    session = strict.beta.sessions.retrieve(sid)
    assert session.budget is not None
    assert session.budget.max_list_cost.amount == "2500"
    assert session.usage.list_cost is not None
    assert session.usage.list_cost.amount == "0"
    for bad in (
        _budget("25.00"),
        _budget("0"),
        _budget("0100"),
        {**_budget("5"), "max_list_cost": {"amount": "5", "currency": "EUR"}},
    ):
        with pytest.raises(anthropic.BadRequestError):
            _session(strict, budget=bad)
    with pytest.raises(anthropic.BadRequestError) as info:
        _session(strict, budget=_budget("100"), model="no-such-model-has-a-price")
    assert _reason(info.value) == "model_not_budgetable"


def test_update_rules(strict: anthropic.Anthropic) -> None:
    plain = _session(strict)
    with pytest.raises(anthropic.BadRequestError) as info:
        strict.beta.sessions.update(plain, budget=_budget("100"))
    assert _reason(info.value) == "budget_create_only"
    sid = _session(strict, budget=_budget("100"))
    assert strict.beta.sessions.update(sid, budget=_budget("50")).budget is not None  # lowering above the spend
    removed = strict.beta.sessions.update(sid, budget=None)
    assert removed.budget is None
    with pytest.raises(anthropic.BadRequestError) as info:
        strict.beta.sessions.update(sid, budget=_budget("100"))
    assert _reason(info.value) == "budget_create_only"  # a removed budget cannot be re-added


def test_budget_reached_mid_turn_then_raised(strict: anthropic.Anthropic) -> None:
    sid = _session(strict, budget=_budget("2"))
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        strict.beta.sessions.events.send(sid, events=[message('call lookup {"q": "x"}')])
        first = read_until(stream, is_idle("requires_action"))
        use = next(e for e in first if e.type == "agent.custom_tool_use")
        # the first request's cost reached the cap: the answer is taken, the next request waits for the budget
        strict.beta.sessions.events.send(
            sid,
            events=[
                {
                    "type": "user.custom_tool_result",
                    "custom_tool_use_id": use.id,
                    "content": [{"type": "text", "text": "ok"}],
                }
            ],
        )
        paused = read_until(stream, is_idle("budget_reached"))
        usage = [e for e in paused if e.type == "session.usage"]
        assert usage
        assert usage[-1].budget is not None
        assert usage[-1].usage.list_cost is not None
        spent = int(usage[-1].usage.list_cost.amount)
        assert spent >= 2
        assert not [e for e in paused if e.type == "agent.message"]  # no request was made
        session = strict.beta.sessions.retrieve(sid)
        assert session.status == "idle"
        assert session.usage.list_cost is not None
        assert session.usage.list_cost.amount == str(spent)
        # only tool answers and interrupts are accepted while paused
        with pytest.raises(anthropic.BadRequestError) as info:
            strict.beta.sessions.events.send(sid, events=[message("more")])
        assert _reason(info.value) == "budget_reached"
        with pytest.raises(anthropic.BadRequestError) as info:
            strict.beta.sessions.update(sid, budget=_budget(str(spent)))
        assert _reason(info.value) == "budget_not_raised"
        strict.beta.sessions.update(sid, budget=_budget("100000"))  # raising resumes the turn where it stopped
        rest = read_until(stream, is_idle("end_turn"))
    types = [e.type for e in rest]
    assert "session.status_running" in types
    assert [e.content[0].text for e in rest if e.type == "agent.message"] == ["lookup: ok"]
    assert "session.usage" in types  # reported as the turn ends
    listed = [e.type for e in strict.beta.sessions.events.list(sid)]  # strict models parse every stored event
    assert listed.count("session.usage") >= 2
    assert strict.beta.sessions.retrieve(sid).status == "idle"


def test_removing_the_budget_resumes_and_stops_tracking(strict: anthropic.Anthropic) -> None:
    sid = _session(strict, budget=_budget("1"))
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        strict.beta.sessions.events.send(sid, events=[message("hello")])
        read_until(stream, is_idle("end_turn"))  # the first request runs: the check is before each request
        strict.beta.sessions.events.send(sid, events=[message("again")])
        read_until(stream, is_idle("budget_reached"))
        strict.beta.sessions.update(sid, budget=None)
        rest = read_until(stream, is_idle("end_turn"))
    assert [e.content[0].text for e in rest if e.type == "agent.message"] == ["echo: again"]
    assert strict.beta.sessions.retrieve(sid).usage.list_cost is None


def test_interrupt_while_paused_drops_the_turn(strict: anthropic.Anthropic) -> None:
    sid = _session(strict, budget=_budget("1"))
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        strict.beta.sessions.events.send(sid, events=[message("hello")])
        read_until(stream, is_idle("end_turn"))
        strict.beta.sessions.events.send(sid, events=[message("again")])
        read_until(stream, is_idle("budget_reached"))
        strict.beta.sessions.events.send(sid, events=[{"type": "user.interrupt"}])
        read_until(stream, is_idle("end_turn"))
        # no turn to resume: a message is taken again, and pauses at once
        strict.beta.sessions.events.send(sid, events=[message("third")])
        read_until(stream, is_idle("budget_reached"))


def test_a_grading_waits_for_the_budget_too(strict: anthropic.Anthropic) -> None:
    sid = _session(strict, budget=_budget("1"))
    outcome = {
        "type": "user.define_outcome",
        "description": "go",
        "rubric": {"type": "text", "content": "verdict satisfied ok"},
    }
    with strict.beta.sessions.events.stream(sid, timeout=30) as stream:
        strict.beta.sessions.events.send(sid, events=[outcome])  # type: ignore[list-item]
        paused = read_until(stream, is_idle("budget_reached"))
        assert not [e for e in paused if e.type.startswith("span.outcome_evaluation")]  # the grader waits
        strict.beta.sessions.update(sid, budget=_budget("100000"))
        rest = read_until(stream, is_idle("end_turn"))
    assert [(e.type, getattr(e, "result", None)) for e in rest if e.type.startswith("span.outcome")] == [
        ("span.outcome_evaluation_start", None),
        ("span.outcome_evaluation_end", "satisfied"),
    ]
    assert strict.beta.sessions.retrieve(sid).outcome_evaluations[0].result == "satisfied"


def test_a_listed_session_carries_the_list_cost_of_a_retrieve(strict: anthropic.Anthropic) -> None:
    """`sessions.list` items are the same sessions `retrieve` returns: with `usage.list_cost` under a budget (and
    the primary thread reports it too)."""
    sid = _session(strict, budget=_budget("100000"))
    plain = _session(strict)
    for session_id in (sid, plain):
        with strict.beta.sessions.events.stream(session_id, timeout=30) as stream:
            strict.beta.sessions.events.send(session_id, events=[message("hello there")])
            read_until(stream, is_idle("end_turn"))
    retrieved = strict.beta.sessions.retrieve(sid)
    assert retrieved.usage.list_cost is not None and int(retrieved.usage.list_cost.amount) > 0
    listed = {s.id: s for s in strict.beta.sessions.list(limit=100).data}
    assert listed[sid].usage == retrieved.usage
    assert listed[plain].usage == strict.beta.sessions.retrieve(plain).usage
    assert listed[plain].usage.list_cost is None  # (tracked only under a budget)
    (primary,) = strict.beta.sessions.threads.list(sid).data
    assert primary.usage is not None and primary.usage.list_cost == retrieved.usage.list_cost
