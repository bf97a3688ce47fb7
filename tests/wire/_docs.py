"""Spec-shaped JSON documents shared by several wire tests."""

from __future__ import annotations

from typing import Any

from loophost.wire import AGENT_TOOL_NAMES

from ._helpers import T0, T1

ALLOW = {"type": "always_allow"}
ASK = {"type": "always_ask"}


def _toolset(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    configs = []
    for name in AGENT_TOOL_NAMES:
        config: dict[str, Any] = {"type": name, "name": name, "enabled": True, "permission_policy": ALLOW}
        config.update((overrides or {}).get(name, {}))
        configs.append(config)
    return {
        "type": "agent_toolset_20260401",
        "default_config": {"enabled": True, "permission_policy": ALLOW},
        "configs": configs,
    }


AGENT_DOC: dict[str, Any] = {
    "id": "agent_011",
    "type": "agent",
    "name": "Researcher",
    "description": "Finds things",
    "system": "You are careful.",
    "model": {
        "id": "claude-opus-4-8",
        "effort": {"type": "high"},
        "speed": "standard",
        "inference_geo": None,
    },
    "tools": [
        _toolset({"web_fetch": {"allowed_domains": ["docs.example.com"], "max_content_tokens": 5000}}),
        {
            "type": "mcp_toolset",
            "mcp_server_name": "github",
            "default_config": {"enabled": True, "permission_policy": ASK},
            "configs": [{"name": "create_issue", "enabled": False, "permission_policy": ASK}],
        },
        {
            "type": "custom",
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    ],
    "mcp_servers": [{"type": "url", "name": "github", "url": "https://mcp.github.example/sse"}],
    "skills": [{"type": "anthropic", "skill_id": "xlsx", "version": "latest"}],
    "metadata": {"team": "search"},
    "multiagent": None,
    "execution_identity": {"type": "service_account"},
    "version": 3,
    "created_at": T0,
    "updated_at": T1,
    "archived_at": None,
}


SNAPSHOT_DOC: dict[str, Any] = {
    key: AGENT_DOC[key]
    for key in (
        "type",
        "id",
        "version",
        "name",
        "description",
        "system",
        "model",
        "tools",
        "mcp_servers",
        "skills",
        "multiagent",
        "execution_identity",
    )
}

USAGE_DOC = {
    "input_tokens": 1200,
    "output_tokens": 340,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 0},
    "active_seconds": 12.5,
    "list_cost": {"amount": "37", "currency": "USD"},
    "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 2},
}
