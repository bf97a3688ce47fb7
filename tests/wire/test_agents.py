from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from loophost.wire import (
    Agent,
    AgentCreateParams,
    AgentToolset,
    AgentUpdateParams,
    AlwaysAllowPolicy,
    AlwaysAskPolicy,
    AutoPolicy,
    AwsRoleIdentity,
    CoordinatorParams,
    CustomTool,
    Effort,
    McpToolset,
    ModelConfig,
    ModelConfigParams,
    SelfParams,
    ServiceAccountIdentity,
    apply_agent_update,
    dump_json,
    resolve_agent_create,
    resolve_model,
    utcnow,
)

from ._docs import AGENT_DOC
from ._helpers import as_json, roundtrip


def _create(**body: Any) -> AgentCreateParams:
    return AgentCreateParams.model_validate({"name": "a", "model": "claude-opus-4-8", **body})


def _agent(**body: Any) -> Agent:
    now = utcnow()
    config = resolve_agent_create(_create(**body))
    return Agent(id="agent_1", created_at=now, updated_at=now, **dict(config))


# --- the resolved resource ---------------------------------------------------------------------------------


def test_fully_resolved_agent_round_trips() -> None:
    agent = roundtrip(Agent, AGENT_DOC)
    assert isinstance(agent, Agent)
    assert isinstance(agent.tools[0], AgentToolset)
    assert isinstance(agent.tools[1], McpToolset)
    assert isinstance(agent.tools[2], CustomTool)
    assert agent.tools[0].configs[6].allowed_domains == ["docs.example.com"]


def test_minimal_create_resolves_like_checklist_item_5() -> None:
    agent = _agent()
    body = as_json(agent)
    assert body["type"] == "agent"
    assert body["version"] == 1
    assert body["model"] == {"id": "claude-opus-4-8", "effort": None, "speed": None, "inference_geo": None}
    assert body["archived_at"] is None
    assert body["metadata"] == {}
    assert body["tools"] == []
    assert body["execution_identity"] == {"type": "service_account"}
    assert body["description"] is None
    assert body["system"] is None


def test_config_and_with_config_are_inverse() -> None:
    agent = Agent.model_validate(AGENT_DOC)
    config = agent.config()
    assert agent.with_config(config) == agent
    bumped = agent.with_config(config.model_copy(update={"system": "new"}), version=4)
    assert bumped.system == "new"
    assert bumped.version == 4
    assert bumped.id == agent.id


# --- create validation (§2.1) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 257},
        {"model": ""},
        {"description": "d" * 2049},
        {"system": "s" * 100_001},
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        {"metadata": {"k" * 65: "v"}},
        {"metadata": {"k": "v" * 513}},
        {"metadata": {"": "v"}},
        {"tools": [{"type": "custom", "name": "bad name", "description": "d", "input_schema": {"type": "object"}}]},
        {"tools": [{"type": "custom", "name": "x" * 129, "description": "d", "input_schema": {"type": "object"}}]},
        {"tools": [{"type": "nope"}]},
        {"tools": [{"type": "agent_toolset_20260401"}, {"type": "agent_toolset_20260401"}]},
        {"tools": [{"type": "mcp_toolset", "mcp_server_name": "ghost"}]},
        {"mcp_servers": [{"type": "url", "name": "gh", "url": "https://x"}]},
        {
            "tools": [{"type": "mcp_toolset", "mcp_server_name": "gh"}],
            "mcp_servers": [{"type": "url", "name": "gh", "url": "https://a"}] * 2,
        },
        {"model": {"id": "claude-opus-4-8", "effort": "extreme"}},
        {"execution_identity": {"type": "aws_role"}},
        {"unknown_field": 1},
    ],
)
def test_invalid_create_bodies_are_rejected(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _create(**body)


def test_boundary_values_are_accepted() -> None:
    params = _create(
        name="n" * 256,
        description="d" * 2048,
        system="s" * 100_000,
        metadata={f"{i:0>64}": "v" * 512 for i in range(16)},
        tools=[{"type": "custom", "name": "A-z_0-9", "description": "d", "input_schema": {"type": "object"}}],
    )
    assert len(params.metadata or {}) == 16


def test_model_accepts_a_string_or_an_object_and_effort_as_bare_string() -> None:
    assert resolve_model("claude-opus-4-8") == ModelConfig(id="claude-opus-4-8")
    bare = _create(model={"id": "claude-opus-4-8", "effort": "high", "speed": "fast"})
    assert isinstance(bare.model, ModelConfigParams)
    assert bare.model.effort == Effort(type="high")
    obj = _create(model={"id": "claude-opus-4-8", "effort": {"type": "max"}, "inference_geo": "us"})
    assert resolve_model(obj.model) == ModelConfig(id="claude-opus-4-8", effort=Effort(type="max"), inference_geo="us")


def test_resolve_model_replaces_the_whole_object_but_keeps_effort_when_omitted() -> None:
    current = ModelConfig(id="a", effort=Effort(type="low"), speed="fast", inference_geo="eu")
    assert resolve_model({"id": "b"}, current=current) == ModelConfig(id="b", effort=Effort(type="low"))
    assert resolve_model("b", current=current) == ModelConfig(id="b", effort=Effort(type="low"))
    assert resolve_model({"id": "b", "effort": None}, current=current) == ModelConfig(id="b")
    assert resolve_model({"id": "b", "effort": "max"}, current=current).effort == Effort(type="max")


def test_skills_versions_and_identity_defaults() -> None:
    config = resolve_agent_create(
        _create(
            skills=[
                {"type": "anthropic", "skill_id": "xlsx"},
                {"type": "custom", "skill_id": "s", "version": "2"},
            ],
            execution_identity={"type": "aws_role", "role_arn": "arn:aws:iam::1:role/r"},
        )
    )
    assert [(s.skill_id, s.version) for s in config.skills] == [("xlsx", "latest"), ("s", "2")]
    assert config.execution_identity == AwsRoleIdentity(role_arn="arn:aws:iam::1:role/r")
    assert resolve_agent_create(_create(execution_identity=None)).execution_identity == ServiceAccountIdentity()


def test_coordinator_multiagent_needs_a_roster() -> None:
    ok = _create(multiagent={"type": "coordinator", "agents": ["agent_2", {"type": "self"}]})
    assert isinstance(ok.multiagent, CoordinatorParams)
    assert ok.multiagent.agents == ["agent_2", SelfParams(type="self")]
    assert resolve_agent_create(ok).multiagent is None  # resolved by the runtime, against the store
    for bad in ([], [{"type": "self"}, {"type": "self"}], [{"type": "nobody"}], ["a"] * 21):
        with pytest.raises(ValidationError):
            _create(multiagent={"type": "coordinator", "agents": bad})


# --- update params and patch semantics (§2.1, checklist item 10) --------------------------------------------


def _update(agent: Agent, **body: Any) -> Agent:
    config = apply_agent_update(agent, AgentUpdateParams.model_validate(body))
    return agent.with_config(config)


def test_metadata_is_patched_key_by_key() -> None:
    agent = _update(_agent(), metadata={"a": "1"})
    assert agent.metadata == {"a": "1"}
    agent = _update(agent, metadata={"a": None, "b": "2"})
    assert agent.metadata == {"b": "2"}
    assert _update(agent, metadata=None).metadata == {}


def test_metadata_patch_may_not_grow_past_the_limit() -> None:
    agent = _agent(metadata={f"k{i}": "v" for i in range(16)})
    with pytest.raises(ValueError, match="16"):
        apply_agent_update(agent, AgentUpdateParams(metadata={"one_more": "v"}))


def test_system_and_description_preserved_when_omitted_cleared_by_null_or_empty() -> None:
    agent = _agent(system="old", description="desc")
    assert _update(agent, name="renamed").system == "old"
    assert _update(agent, system=None).system is None
    assert _update(agent, system="").system is None
    assert _update(agent, description="").description is None
    assert _update(agent, system="new").system == "new"


def test_arrays_are_replaced_and_null_or_empty_clears() -> None:
    agent = _agent(tools=[{"type": "agent_toolset_20260401"}], skills=[{"type": "anthropic", "skill_id": "pdf"}])
    replaced = _update(agent, tools=[{"type": "custom", "name": "c", "description": "d", "input_schema": {}}])
    assert [t.type for t in replaced.tools] == ["custom"]
    assert _update(agent, tools=None).tools == []
    assert _update(agent, tools=[]).tools == []
    assert _update(agent, skills=None).skills == []
    assert _update(agent, name="x").tools == agent.tools


def test_model_update_is_whole_object_except_effort() -> None:
    agent = _agent(model={"id": "m1", "effort": "high", "inference_geo": "eu", "speed": "fast"})
    updated = _update(agent, model={"id": "m2"})
    assert updated.model == ModelConfig(id="m2", effort=Effort(type="high"))


def test_execution_identity_null_restores_the_service_account() -> None:
    agent = _agent(execution_identity={"type": "aws_role", "role_arn": "arn"})
    assert _update(agent, execution_identity=None).execution_identity == ServiceAccountIdentity()


def test_a_no_op_update_gives_an_equal_config() -> None:
    agent = _agent(system="s", metadata={"a": "1"}, tools=[{"type": "agent_toolset_20260401"}])
    same = apply_agent_update(agent, AgentUpdateParams.model_validate({"system": "s", "metadata": {"a": "1"}}))
    assert same == agent.config()
    changed = apply_agent_update(agent, AgentUpdateParams.model_validate({"system": "t"}))
    assert changed != agent.config()


def test_update_rechecks_tool_and_server_references_on_the_merged_result() -> None:
    agent = _agent(
        tools=[{"type": "mcp_toolset", "mcp_server_name": "gh"}],
        mcp_servers=[{"type": "url", "name": "gh", "url": "https://x"}],
    )
    with pytest.raises(ValueError, match="not referenced"):
        apply_agent_update(agent, AgentUpdateParams.model_validate({"tools": []}))
    cleared = apply_agent_update(agent, AgentUpdateParams.model_validate({"tools": [], "mcp_servers": None}))
    assert cleared.tools == []
    assert cleared.mcp_servers == []


def test_update_params_validation() -> None:
    assert AgentUpdateParams.model_validate({"version": 1}).version == 1
    for body in (
        {"version": 0},
        {"name": None},
        {"model": None},
        {"name": ""},
        {"metadata": {"k": "v" * 513}},
    ):
        with pytest.raises(ValidationError):
            AgentUpdateParams.model_validate(body)


def test_policies_are_discriminated() -> None:
    params = _create(
        tools=[{"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "auto"}}}]
    )
    toolset = resolve_agent_create(params).tools[0]
    assert isinstance(toolset, AgentToolset)
    assert isinstance(toolset.default_config.permission_policy, AutoPolicy)
    assert all(isinstance(c.permission_policy, AutoPolicy) for c in toolset.configs)
    assert AlwaysAllowPolicy() != AlwaysAskPolicy()


def test_resending_the_same_tools_is_a_no_op() -> None:
    tools = [
        {"type": "agent_toolset_20260401", "configs": [{"name": "web_fetch", "allowed_domains": ["a.com"]}]},
        {
            "type": "custom",
            "name": "c",
            "description": "d",
            "input_schema": {"type": "object", "properties": {}},
        },
    ]
    stored = Agent.model_validate_json(dump_json(_agent(tools=tools)))  # as read back from a store
    same = apply_agent_update(stored, AgentUpdateParams.model_validate({"tools": tools}))
    assert same == stored.config()


def test_updated_configs_do_not_share_state_with_their_source() -> None:
    agent = _agent(metadata={"a": "1"})
    updated = agent.with_config(apply_agent_update(agent, AgentUpdateParams(system="s")))
    updated.metadata["b"] = "2"
    assert agent.metadata == {"a": "1"}
