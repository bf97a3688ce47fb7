"""The built-in tool seam: what the session worker calls for `agent_toolset_20260401` tools.

The [toolset] work supplies sandboxed implementations of bash, read, write, …; the runtime only needs this
protocol. A tool that is enabled on an agent but has no implementation registered is unavailable: the model
never sees it, and a call to it is refused like a call to an unknown tool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ... import wire


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who is calling: a tool keys side effects on `tool_use_id` (stable across a crash and a resume)."""

    workspace: str
    session_id: str
    environment_id: str
    tool_use_id: str


@dataclass(frozen=True, slots=True)
class ToolOutput:
    text: str
    is_error: bool = False
    events: tuple[Any, ...] = ()
    """Wire events to commit with the result, before it (an MCP call's `session.error`)."""


@runtime_checkable
class BuiltinTool(Protocol):
    name: str
    description: str
    input_schema: dict[str, Any]

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput: ...


@dataclass(frozen=True, slots=True)
class ToolPolicy:
    """How one tool of a session may be called: `allow` runs, `ask` waits for a confirmation."""

    tool: BuiltinTool
    permission: str  # "allow" | "ask"
    evaluation: dict[str, Any]


def builtin_policies(agent: wire.SessionAgent, registry: Mapping[str, BuiltinTool]) -> dict[str, ToolPolicy]:
    """The agent's enabled toolset tools that have an implementation, with their permission (spec §6.1)."""
    policies: dict[str, ToolPolicy] = {}
    for tool in agent.tools:
        if not isinstance(tool, wire.AgentToolset):
            continue
        for config in tool.configs:
            implementation = registry.get(config.name)
            if not config.enabled or implementation is None:
                continue
            permission, evaluation = permission_of(config.permission_policy)
            policies[config.name] = ToolPolicy(implementation, permission, evaluation)
    return policies


def permission_of(policy: wire.PermissionPolicy) -> tuple[str, dict[str, Any]]:
    """A permission policy as the permission a call gets and the evaluation its tool-use event shows.

    `auto` behaves as ask until a policy engine exists, and the evaluation says so."""
    if policy.type == "always_allow":
        return "allow", {"type": "always_allow"}
    if policy.type == "always_ask":
        return "ask", {"type": "always_ask"}
    return "ask", {"type": "auto", "evaluated_permission": {"type": "ask", "reason_code": "no_policy_engine"}}


def custom_tools(agent: wire.SessionAgent) -> dict[str, wire.CustomTool]:
    return {tool.name: tool for tool in agent.tools if isinstance(tool, wire.CustomTool)}
