"""The advisor as a roster member (`engine/_threads.py`): named `advisor`, its model, no tools, fixed
instructions."""

from __future__ import annotations

from loophost import wire
from loophost.runtime.engine._threads import ADVISOR_SYSTEM, roster_of


def _agent(name: str, multiagent: object = None) -> wire.SessionAgent:
    return wire.SessionAgent.model_validate(
        {"id": f"agent_{name}", "version": 1, "name": name, "model": {"id": "scripted"}, "multiagent": multiagent}
    )


def test_a_coordinators_advisor_is_a_member_named_advisor() -> None:
    helper = wire.SessionThreadAgent.from_agent(_agent("helper"))
    lead = _agent(
        "lead", {"type": "coordinator", "agents": [helper.model_dump(), {"type": "advisor", "model": "m-advice"}]}
    )
    roster = roster_of(lead)
    assert [(a.id, a.name, a.model.id) for a in roster] == [
        ("agent_helper", "helper", "scripted"),
        ("advisor", "advisor", "m-advice"),
    ]
    advisor = roster[1]
    assert advisor.tools == [] and advisor.mcp_servers == [] and advisor.skills == []
    assert advisor.system == ADVISOR_SYSTEM


def test_an_enabled_advisor_joins_the_subagents_and_a_disabled_one_does_not() -> None:
    helper = wire.SessionThreadAgent.from_agent(_agent("helper"))
    subagents = {"type": "enabled", "predefined_agents": [helper.model_dump()]}
    enabled = _agent(
        "lead",
        {"type": "multiagent_20261001", "advisor": {"type": "enabled", "model": "m"}, "subagents": subagents},
    )
    assert [a.name for a in roster_of(enabled)] == ["advisor", "helper"]
    alone = _agent(
        "lead",
        {
            "type": "multiagent_20261001",
            "advisor": {"type": "enabled", "model": "m"},
            "subagents": {"type": "disabled"},
        },
    )
    assert [a.name for a in roster_of(alone)] == ["advisor"]
    disabled = _agent("lead", {"type": "multiagent_20261001", "advisor": {"type": "disabled"}, "subagents": subagents})
    assert [a.name for a in roster_of(disabled)] == ["helper"]
    assert roster_of(_agent("plain")) == []
