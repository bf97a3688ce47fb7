"""The `multiagent` field's request shapes and the level-by-level merge of `multiagent_20261001` updates."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from loophost.wire import (
    AdvisorEnabled,
    AgentReference,
    MemberDisabled,
    MembersEnabled,
    Multiagent,
    Multiagent20261001,
    MultiagentParams,
    merge_advisor,
    merge_members,
)

PARAMS: TypeAdapter[Any] = TypeAdapter(MultiagentParams)
RESOLVED: TypeAdapter[Any] = TypeAdapter(Multiagent)


def test_defaults_resolve_every_member() -> None:
    doc = RESOLVED.dump_python(Multiagent20261001(), mode="json")
    assert doc == {
        "type": "multiagent_20261001",
        "advisor": {"type": "disabled"},
        "subagents": {"type": "enabled", "inline_agents": {"type": "enabled"}, "predefined_agents": []},
        "workflows": {"type": "disabled"},
    }


@pytest.mark.parametrize("workflows", [None, {"type": "enabled"}])
def test_workflows_are_refused_until_built(workflows: Any) -> None:
    with pytest.raises(ValidationError, match="workflows are not supported"):
        PARAMS.validate_python({"type": "multiagent_20261001", "workflows": workflows})
    ok = PARAMS.validate_python({"type": "multiagent_20261001", "workflows": {"type": "disabled"}})
    assert ok.workflows == MemberDisabled() or ok.workflows.type == "disabled"


def test_an_advisor_is_accepted_once_per_roster() -> None:
    """The advisor is the roster member named `advisor`: one per coordinator roster (its name addresses it)."""
    enabled = PARAMS.validate_python({"type": "multiagent_20261001", "advisor": {"type": "enabled", "model": "m"}})
    assert enabled.advisor is not None and enabled.advisor.type == "enabled" and enabled.advisor.model == "m"
    roster = PARAMS.validate_python({"type": "coordinator", "agents": ["agent_a", {"type": "advisor", "model": "m"}]})
    assert [getattr(e, "type", e) for e in roster.agents] == ["agent_a", "advisor"]
    with pytest.raises(ValidationError, match="at most one"):
        PARAMS.validate_python(
            {"type": "coordinator", "agents": [{"type": "advisor", "model": "m"}, {"type": "advisor", "model": "n"}]}
        )
    ok = PARAMS.validate_python({"type": "multiagent_20261001", "advisor": {"type": "disabled"}})
    assert ok.advisor is not None and ok.advisor.type == "disabled"


def test_every_sent_object_needs_its_type_and_an_enabled_advisor_its_model() -> None:
    for bad in (
        {"type": "multiagent_20261001", "advisor": {"type": "enabled"}},
        {"type": "multiagent_20261001", "subagents": {"predefined_agents": []}},
        {"type": "multiagent_20261001", "subagents": {"type": "enabled", "predefined_agents": ["a"] * 21}},
        {"type": "multiagent_20261001", "subagents": {"type": "enabled", "predefined_agents": [{"type": "advisor"}]}},
    ):
        with pytest.raises(ValidationError):
            PARAMS.validate_python(bad)


STORED = MembersEnabled(
    inline_agents={"type": "disabled"},  # type: ignore[arg-type]
    predefined_agents=[AgentReference(id="agent_a", version=2)],
)


def _sent(body: dict[str, Any]) -> Any:
    return PARAMS.validate_python({"type": "multiagent_20261001", "subagents": body}).subagents


def test_merge_keeps_omitted_keys_and_replaces_sent_lists() -> None:
    assert merge_members(STORED, None, False) == ("enabled", "disabled", [STORED.predefined_agents[0]])
    kind, inline, entries = merge_members(STORED, _sent({"type": "enabled", "predefined_agents": ["agent_b"]}), True)
    assert (kind, inline, entries) == ("enabled", "disabled", ["agent_b"])
    kind, inline, entries = merge_members(STORED, _sent({"type": "enabled", "inline_agents": None}), True)
    assert (kind, inline, entries) == ("enabled", "enabled", [STORED.predefined_agents[0]])


def test_merge_null_or_another_type_takes_defaults() -> None:
    assert merge_members(STORED, None, True) == ("enabled", "enabled", [])
    assert merge_members(STORED, _sent({"type": "disabled"}), True) == ("disabled", "enabled", [])
    assert merge_members(MemberDisabled(), _sent({"type": "enabled"}), True) == ("enabled", "enabled", [])
    assert merge_advisor(AdvisorEnabled(model="m"), None, False) == AdvisorEnabled(model="m")
    assert merge_advisor(AdvisorEnabled(model="m"), None, True) == MemberDisabled()


@given(st.lists(st.sampled_from(["agent_a", "agent_b", {"type": "self"}, {"type": "agent", "id": "agent_c"}])))
def test_predefined_lists_round_trip_as_sent(entries: list[Any]) -> None:
    if len(entries) > 20:
        return
    sent = _sent({"type": "enabled", "predefined_agents": entries})
    assert sent.model_dump(mode="json", exclude_unset=True)["predefined_agents"] == entries
