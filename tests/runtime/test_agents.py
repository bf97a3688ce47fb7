"""Agents through the runtime API: resolution, immutable versions, patch semantics, archive, pages."""

from __future__ import annotations

import pytest

from loophost import wire
from loophost.runtime import Conflict, InvalidRequest, NotFound, Runtime

from .conftest import WS


def params(**fields: object) -> wire.AgentCreateParams:
    return wire.AgentCreateParams.model_validate({"name": "agent", "model": "claude-opus-4-8", **fields})


async def test_create_resolves_the_agent_and_get_returns_the_same(rt: Runtime) -> None:
    agent = await rt.create_agent(WS, params(tools=[{"type": "agent_toolset_20260401"}]))
    assert (agent.version, agent.model.id, agent.archived_at, agent.metadata) == (
        1,
        "claude-opus-4-8",
        None,
        {},
    )
    assert agent.execution_identity.type == "service_account"
    toolset = agent.tools[0]
    assert isinstance(toolset, wire.AgentToolset)
    assert toolset.default_config.enabled is True
    assert toolset.default_config.permission_policy.type == "always_allow"
    assert await rt.get_agent(WS, agent.id) == agent


async def test_updates_make_versions_and_a_noop_makes_none(rt: Runtime) -> None:
    agent = await rt.create_agent(WS, params(system="old"))
    v2 = await rt.update_agent(WS, agent.id, wire.AgentUpdateParams(system="new", version=1))
    assert v2.version == 2 and v2.system == "new"
    assert (await rt.get_agent(WS, agent.id, version=1)).system == "old"
    with pytest.raises(Conflict):
        await rt.update_agent(WS, agent.id, wire.AgentUpdateParams(name="x", version=1))
    same = await rt.update_agent(WS, agent.id, wire.AgentUpdateParams(system="new"))
    assert same.version == 2
    versions = await rt.list_agent_versions(WS, agent.id)
    assert [a.version for a in versions.data] == [2, 1]


async def test_metadata_patch_and_omit_vs_null(rt: Runtime) -> None:
    agent = await rt.create_agent(WS, params(system="keep"))
    a = await rt.update_agent(WS, agent.id, wire.AgentUpdateParams(metadata={"a": "1"}))
    b = await rt.update_agent(WS, agent.id, wire.AgentUpdateParams.model_validate({"metadata": {"a": None, "b": "2"}}))
    assert a.metadata == {"a": "1"} and b.metadata == {"b": "2"} and b.system == "keep"
    cleared = await rt.update_agent(WS, agent.id, wire.AgentUpdateParams.model_validate({"system": None}))
    assert cleared.system is None


async def test_list_pages_with_limit_one_and_hides_archived(rt: Runtime) -> None:
    ids = [(await rt.create_agent(WS, params(name=f"a{i}"))).id for i in range(3)]
    seen, page = [], await rt.list_agents(WS, limit=1)
    while True:
        seen.extend(a.id for a in page.data)
        if not page.next_page:
            break
        page = await rt.list_agents(WS, limit=1, page=page.next_page)
    assert seen == ids
    archived = await rt.archive_agent(WS, ids[0])
    assert archived.archived_at is not None
    assert [a.id for a in (await rt.list_agents(WS)).data] == ids[1:]
    assert [a.id for a in (await rt.list_agents(WS, include_archived=True)).data] == ids
    with pytest.raises(Conflict):
        await rt.update_agent(WS, ids[0], wire.AgentUpdateParams(system="x"))


async def test_unknown_agent_and_bad_cursor_are_typed_errors(rt: Runtime) -> None:
    with pytest.raises(NotFound):
        await rt.get_agent(WS, "agent_nope")
    with pytest.raises(InvalidRequest):
        await rt.list_agents(WS, page="garbage!")
    with pytest.raises(InvalidRequest):
        await rt.list_agents(WS, limit=0)
