from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from loophost.wire import (
    AGENT_TOOL_NAMES,
    AgentToolset,
    AlwaysAllowPolicy,
    AlwaysAskPolicy,
    AutoPolicy,
    CustomTool,
    McpToolset,
    Tool,
    ToolParams,
    resolve_tools,
)

from ._helpers import as_json

_PARAMS: TypeAdapter[list[ToolParams]] = TypeAdapter(list[ToolParams])


def _resolve(*tools: dict[str, Any]) -> list[Tool]:
    return resolve_tools(_PARAMS.validate_python(list(tools)))


def test_agent_tool_names() -> None:
    assert AGENT_TOOL_NAMES == ("bash", "read", "write", "edit", "glob", "grep", "web_fetch", "web_search")


def test_bare_agent_toolset_defaults_to_enabled_always_allow_with_all_eight_configs() -> None:
    (toolset,) = _resolve({"type": "agent_toolset_20260401"})
    assert isinstance(toolset, AgentToolset)
    assert toolset.default_config.enabled is True
    assert toolset.default_config.permission_policy == AlwaysAllowPolicy()
    assert [c.name for c in toolset.configs] == list(AGENT_TOOL_NAMES)
    assert as_json(toolset.configs[0]) == {
        "type": "bash",
        "name": "bash",
        "enabled": True,
        "permission_policy": {"type": "always_allow"},
    }
    assert all(c.enabled and c.permission_policy == AlwaysAllowPolicy() for c in toolset.configs)


def test_mcp_toolset_defaults_to_always_ask() -> None:
    (toolset,) = _resolve({"type": "mcp_toolset", "mcp_server_name": "gh"})
    assert isinstance(toolset, McpToolset)
    assert as_json(toolset) == {
        "type": "mcp_toolset",
        "mcp_server_name": "gh",
        "default_config": {"enabled": True, "permission_policy": {"type": "always_ask"}},
        "configs": [],
    }


def test_configs_inherit_default_config_unless_overridden() -> None:
    (toolset,) = _resolve(
        {
            "type": "agent_toolset_20260401",
            "default_config": {"enabled": False, "permission_policy": {"type": "always_ask"}},
            "configs": [
                {"name": "bash", "enabled": True},
                {"name": "read", "permission_policy": {"type": "auto"}},
                {"name": "grep", "enabled": None, "permission_policy": None},
            ],
        }
    )
    assert isinstance(toolset, AgentToolset)
    by_name = {c.name: c for c in toolset.configs}
    assert (by_name["bash"].enabled, by_name["bash"].permission_policy) == (True, AlwaysAskPolicy())
    assert (by_name["read"].enabled, by_name["read"].permission_policy) == (False, AutoPolicy())
    assert (by_name["grep"].enabled, by_name["grep"].permission_policy) == (False, AlwaysAskPolicy())
    assert (by_name["write"].enabled, by_name["write"].permission_policy) == (False, AlwaysAskPolicy())


def test_web_tool_extras_are_kept_in_the_resolved_config() -> None:
    (toolset,) = _resolve(
        {
            "type": "agent_toolset_20260401",
            "configs": [
                {
                    "name": "web_fetch",
                    "type": "web_fetch",
                    "blocked_domains": ["ads.example.com"],
                    "max_content_tokens": 1000,
                    "url_sources": {"user_input": {"type": "all"}},
                },
                {
                    "name": "web_search",
                    "allowed_domains": ["docs.example.com"],
                    "user_location": {"type": "approximate", "country": "DE"},
                },
            ],
        }
    )
    assert isinstance(toolset, AgentToolset)
    fetch, search = toolset.configs[6], toolset.configs[7]
    assert as_json(fetch) == {
        "type": "web_fetch",
        "name": "web_fetch",
        "enabled": True,
        "permission_policy": {"type": "always_allow"},
        "blocked_domains": ["ads.example.com"],
        "max_content_tokens": 1000,
        "url_sources": {"user_input": {"type": "all"}},
    }
    assert as_json(search)["allowed_domains"] == ["docs.example.com"]
    assert as_json(search)["user_location"] == {
        "type": "approximate",
        "city": None,
        "country": "DE",
        "region": None,
        "timezone": None,
    }


def test_mcp_tool_configs_resolve_against_their_default() -> None:
    (toolset,) = _resolve(
        {
            "type": "mcp_toolset",
            "mcp_server_name": "gh",
            "default_config": {"permission_policy": {"type": "always_allow"}},
            "configs": [
                {"name": "delete_repo", "permission_policy": {"type": "always_ask"}},
                {"name": "read"},
            ],
        }
    )
    assert isinstance(toolset, McpToolset)
    assert [(c.name, c.enabled, c.permission_policy.type) for c in toolset.configs] == [
        ("delete_repo", True, "always_ask"),
        ("read", True, "always_allow"),
    ]


def test_custom_tools_are_echoed_as_given() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "additionalProperties": False,
        "$defs": {"x": {"type": "integer"}},
    }
    (tool,) = _resolve({"type": "custom", "name": "get-weather_2", "description": "d", "input_schema": schema})
    assert isinstance(tool, CustomTool)
    assert as_json(tool) == {
        "type": "custom",
        "name": "get-weather_2",
        "description": "d",
        "input_schema": schema,
    }


@pytest.mark.parametrize(
    "tool",
    [
        {"type": "agent_toolset_20260401", "configs": [{"name": "python"}]},
        {"type": "agent_toolset_20260401", "configs": [{"name": "bash", "type": "read"}]},
        {"type": "agent_toolset_20260401", "configs": [{"name": "bash", "allowed_domains": ["x.com"]}]},
        {"type": "agent_toolset_20260401", "configs": [{"name": "web_search", "max_content_tokens": 5}]},
        {"type": "agent_toolset_20260401", "configs": [{"name": "web_fetch", "allowed_domains": []}]},
        {"type": "agent_toolset_20260401", "configs": [{"name": "web_fetch", "allowed_domains": ["d"] * 65}]},
        {
            "type": "agent_toolset_20260401",
            "configs": [{"name": "web_fetch", "allowed_domains": ["a"], "blocked_domains": ["b"]}],
        },
        {"type": "agent_toolset_20260401", "configs": [{"name": "bash"}, {"name": "bash"}]},
        {"type": "mcp_toolset", "mcp_server_name": ""},
        {"type": "mcp_toolset", "mcp_server_name": "gh", "configs": [{"name": "a"}, {"name": "a"}]},
        {"type": "custom", "name": "ok", "description": "d", "input_schema": {"type": "array"}},
        {"type": "custom", "name": "ok", "input_schema": {"type": "object"}},
    ],
)
def test_invalid_tool_params_are_rejected(tool: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _PARAMS.validate_python([tool])
