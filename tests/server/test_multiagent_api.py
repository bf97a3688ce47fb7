"""The agent `multiagent` field over HTTP with the official SDK in strict response validation (spec-2 §3.1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from .conftest import KEY_A, ServerProcess


@pytest.fixture
def strict(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    """A client whose response models reject any shape the SDK does not declare."""
    with anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0, _strict_response_validation=True) as c:
        yield c


def _name() -> str:
    return f"ma-{uuid.uuid4().hex[:10]}"


def _agent(client: anthropic.Anthropic, **body: Any) -> Any:
    return client.beta.agents.create(name=_name(), model="scripted", **body)


def test_coordinator_roster_comes_back_resolved(strict: anthropic.Anthropic) -> None:
    worker = _agent(strict)
    worker = strict.beta.agents.update(worker.id, version=worker.version, system="v2")
    pinned = _agent(strict)
    lead = _agent(
        strict,
        multiagent={
            "type": "coordinator",
            "agents": [
                worker.id,
                {"type": "self"},
                {"type": "agent", "id": pinned.id},
            ],
        },
    )
    expected = [
        {"type": "agent", "id": worker.id, "version": 2},
        {"type": "agent", "id": lead.id, "version": 1},
        {"type": "agent", "id": pinned.id, "version": 1},
    ]
    assert lead.multiagent is not None
    assert lead.multiagent.model_dump(mode="json") == {"type": "coordinator", "agents": expected}
    assert strict.beta.agents.retrieve(lead.id).multiagent == lead.multiagent
    assert any(a.id == lead.id for a in strict.beta.agents.list(limit=100).data)  # strict models parse the page
    # a new version re-pins self; the others stay pinned
    updated = strict.beta.agents.update(lead.id, version=1, system="lead v2")
    assert updated.multiagent is not None
    assert updated.multiagent.model_dump(mode="json")["agents"][1] == {"type": "agent", "id": lead.id, "version": 2}
    # an update that changes nothing makes no version, whatever `self` resolves to
    same = strict.beta.agents.update(lead.id, version=2, multiagent=lead.multiagent.model_dump(mode="json"))
    assert same.version == 2


def test_roster_rules_are_400s(strict: anthropic.Anthropic) -> None:
    worker = _agent(strict)
    nested = _agent(strict, multiagent={"type": "coordinator", "agents": [worker.id]})
    archived = _agent(strict)
    strict.beta.agents.archive(archived.id)
    for agents, status in (
        ([worker.id, {"type": "agent", "id": worker.id}], 400),  # not distinct after resolution
        ([nested.id], 400),  # depth 1
        ([archived.id], 400),
        (["agent_doesnotexist"], 404),
        ([], 400),
    ):
        with pytest.raises(anthropic.APIStatusError) as info:
            _agent(strict, multiagent={"type": "coordinator", "agents": agents})
        assert info.value.status_code == status, agents


@pytest.mark.parametrize(
    "multiagent",
    [
        {"type": "coordinator", "agents": [{"type": "advisor", "model": "scripted"}]},
        {"type": "multiagent_20261001", "advisor": {"type": "enabled", "model": "scripted"}},
    ],
)
def test_an_advisor_is_accepted_and_snapshotted(strict: anthropic.Anthropic, multiagent: Any) -> None:
    """On create and on update, echoed in the resolved shape, and copied to a session's agent snapshot (its
    consultation over HTTP: tests/server/test_threads_api.py)."""
    advised = _agent(strict, multiagent=multiagent)
    expected = {**multiagent}
    if multiagent["type"] == "multiagent_20261001":
        expected |= {
            "subagents": {"type": "enabled", "inline_agents": {"type": "enabled"}, "predefined_agents": []},
            "workflows": {"type": "disabled"},
        }
    assert advised.multiagent is not None and advised.multiagent.model_dump(mode="json") == expected
    agent = _agent(strict)
    updated = strict.beta.agents.update(agent.id, version=agent.version, multiagent=multiagent)
    assert updated.multiagent is not None and updated.multiagent.model_dump(mode="json") == expected
    assert strict.beta.agents.retrieve(agent.id).multiagent == updated.multiagent
    env = strict.beta.environments.create(name=_name())
    session = strict.beta.sessions.create(agent=advised.id, environment_id=env.id)
    assert session.agent.multiagent is not None
    assert session.agent.multiagent.model_dump(mode="json") == expected
    # one advisor per coordinator roster: its name, `advisor`, addresses it
    with pytest.raises(anthropic.BadRequestError, match="at most one"):
        _agent(
            strict,
            multiagent={
                "type": "coordinator",
                "agents": [{"type": "advisor", "model": "scripted"}, {"type": "advisor", "model": "other"}],
            },
        )


def test_multiagent_20261001_resolves_and_merges_on_update(strict: anthropic.Anthropic) -> None:
    a = _agent(strict)
    b = _agent(strict)
    agent = _agent(
        strict,
        multiagent={
            "type": "multiagent_20261001",
            "subagents": {"type": "enabled", "inline_agents": {"type": "disabled"}, "predefined_agents": [a.id]},
        },
    )
    assert agent.multiagent is not None
    assert agent.multiagent.model_dump(mode="json") == {
        "type": "multiagent_20261001",
        "advisor": {"type": "disabled"},
        "subagents": {
            "type": "enabled",
            "inline_agents": {"type": "disabled"},
            "predefined_agents": [{"type": "agent", "id": a.id, "version": 1}],
        },
        "workflows": {"type": "disabled"},
    }
    # an omitted key keeps its value; a sent list replaces the stored one
    agent = strict.beta.agents.update(
        agent.id,
        version=1,
        multiagent={
            "type": "multiagent_20261001",
            "advisor": {"type": "disabled"},
            "subagents": {"type": "enabled", "predefined_agents": [b.id, {"type": "self"}]},
        },
    )
    doc = agent.multiagent.model_dump(mode="json") if agent.multiagent else {}
    assert doc["advisor"] == {"type": "disabled"}
    assert doc["subagents"]["inline_agents"] == {"type": "disabled"}
    assert doc["subagents"]["predefined_agents"] == [
        {"type": "agent", "id": b.id, "version": 1},
        {"type": "agent", "id": agent.id, "version": 2},
    ]
    # null takes the default (enabled, inline enabled, no predefined agents); another type replaces
    agent = strict.beta.agents.update(
        agent.id, version=2, multiagent={"type": "multiagent_20261001", "subagents": None}
    )
    doc = agent.multiagent.model_dump(mode="json") if agent.multiagent else {}
    assert doc["subagents"] == {"type": "enabled", "inline_agents": {"type": "enabled"}, "predefined_agents": []}
    assert doc["advisor"]["type"] == "disabled"
    # inline disabled with no predefined agents, on the merged result
    with pytest.raises(anthropic.BadRequestError):
        strict.beta.agents.update(
            agent.id,
            multiagent={
                "type": "multiagent_20261001",
                "subagents": {"type": "enabled", "inline_agents": {"type": "disabled"}},
            },
        )
    cleared = strict.beta.agents.update(agent.id, multiagent=None)
    assert cleared.multiagent is None


def test_workflows_are_a_clear_400(strict: anthropic.Anthropic) -> None:
    for workflows in ({"type": "enabled"}, None):
        with pytest.raises(anthropic.BadRequestError) as info:
            _agent(strict, multiagent={"type": "multiagent_20261001", "workflows": workflows})
        assert "workflows are not supported" in info.value.message


def test_session_snapshots_the_roster(strict: anthropic.Anthropic) -> None:
    worker = _agent(strict, system="I work")
    lead = _agent(strict, multiagent={"type": "coordinator", "agents": [worker.id, {"type": "self"}]})
    env = strict.beta.environments.create(name=_name())
    session = strict.beta.sessions.create(
        agent={"type": "agent_with_overrides", "id": lead.id, "system": "overridden"}, environment_id=env.id
    )
    roster = session.agent.multiagent
    assert roster is not None
    assert roster.type == "coordinator"
    first, own = roster.agents
    assert first.type == "agent"
    assert (first.id, first.system) == (worker.id, "I work")
    assert own.type == "agent"
    assert (own.id, own.system) == (lead.id, "overridden")  # self copies take the session's overrides
    assert strict.beta.sessions.retrieve(session.id).agent.multiagent == roster
