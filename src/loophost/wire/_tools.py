"""Agent tools: the request union, the fully resolved response union and the resolution between them.

Resolution rules (spec §2.1, §6.1): an `agent_toolset_20260401` defaults to `enabled: true` and
`always_allow` and answers with a config for each of its eight tools; an `mcp_toolset` defaults to
`always_ask` and answers with the tools it was given configs for; a `custom` tool is echoed. In a config,
an omitted or null `enabled`/`permission_policy` inherits the toolset's `default_config`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, model_validator

from ._base import ParamsModel, SparseWireModel, WireModel

# --- permission policies -------------------------------------------------------------------------------


class AlwaysAllowPolicy(WireModel):
    type: Literal["always_allow"] = "always_allow"


class AlwaysAskPolicy(WireModel):
    type: Literal["always_ask"] = "always_ask"


class AutoPolicy(WireModel):
    """The server judges each call (surfaces as `evaluation: {type: "auto", ...}` on the tool use)."""

    type: Literal["auto"] = "auto"


PermissionPolicy = Annotated[AlwaysAllowPolicy | AlwaysAskPolicy | AutoPolicy, Field(discriminator="type")]

AgentToolName = Literal["bash", "read", "write", "edit", "glob", "grep", "web_fetch", "web_search"]
AGENT_TOOL_NAMES: tuple[AgentToolName, ...] = get_args(AgentToolName)
"""The eight tools of `agent_toolset_20260401`, in the order resolved configs list them."""

_DOMAIN_TOOLS = frozenset({"web_fetch", "web_search"})
_TOOL_EXTRAS: dict[str, frozenset[str]] = {
    "web_fetch": frozenset({"allowed_domains", "blocked_domains", "max_content_tokens", "url_sources"}),
    "web_search": frozenset({"allowed_domains", "blocked_domains", "user_location"}),
}
_ALL_EXTRAS = frozenset().union(*_TOOL_EXTRAS.values())
MAX_TOOLS = 256
_CUSTOM_TOOL_NAME = r"^[A-Za-z0-9_-]{1,128}$"


class UserLocation(WireModel):
    """`web_search` localisation hint."""

    type: Literal["approximate"] = "approximate"
    city: str | None = None
    country: str | None = None
    region: str | None = None
    timezone: str | None = None


class _ToolConfigFields(ParamsModel):
    """Per-tool extras of `web_fetch` / `web_search`; all absent for the other tools."""

    allowed_domains: Annotated[list[str], Field(min_length=1, max_length=64)] | None = None
    blocked_domains: Annotated[list[str], Field(min_length=1, max_length=64)] | None = None
    max_content_tokens: Annotated[int, Field(ge=1)] | None = None
    url_sources: Any = None
    user_location: UserLocation | None = None


# --- request shapes --------------------------------------------------------------------------------------


class ToolsetDefaultConfigParams(ParamsModel):
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None


class AgentToolConfigParams(_ToolConfigFields):
    """One entry of `configs` in an agent toolset request; `type`, when sent, must equal `name`."""

    name: AgentToolName
    type: AgentToolName | None = None
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None

    @model_validator(mode="after")
    def _check(self) -> AgentToolConfigParams:
        if self.type is not None and self.type != self.name:
            raise ValueError(f"tool config type {self.type!r} does not match name {self.name!r}")
        allowed = _TOOL_EXTRAS.get(self.name, frozenset())
        for extra in _ALL_EXTRAS - allowed:
            if getattr(self, extra) is not None:
                raise ValueError(f"{extra!r} is not a setting of the {self.name!r} tool")
        if self.allowed_domains is not None and self.blocked_domains is not None:
            raise ValueError("allowed_domains and blocked_domains are mutually exclusive")
        return self


class AgentToolsetParams(ParamsModel):
    type: Literal["agent_toolset_20260401"] = "agent_toolset_20260401"
    default_config: ToolsetDefaultConfigParams | None = None
    configs: list[AgentToolConfigParams] | None = None

    @model_validator(mode="after")
    def _unique_configs(self) -> AgentToolsetParams:
        _require_unique((c.name for c in self.configs or ()), "agent toolset config")
        return self


class McpToolConfigParams(ParamsModel):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None


class McpToolsetParams(ParamsModel):
    type: Literal["mcp_toolset"] = "mcp_toolset"
    mcp_server_name: Annotated[str, Field(min_length=1, max_length=255)]
    default_config: ToolsetDefaultConfigParams | None = None
    configs: list[McpToolConfigParams] | None = None

    @model_validator(mode="after")
    def _unique_configs(self) -> McpToolsetParams:
        _require_unique((c.name for c in self.configs or ()), "mcp toolset config")
        return self


class CustomToolInputSchema(SparseWireModel):
    """JSON Schema of a custom tool's input; any other schema keywords are kept and echoed as given."""

    type: Literal["object"] = "object"
    properties: dict[str, Any] | None = None
    required: list[str] | None = None


class CustomToolParams(ParamsModel):
    """A tool the API client executes (`agent.custom_tool_use` -> `user.custom_tool_result`)."""

    type: Literal["custom"] = "custom"
    name: Annotated[str, Field(pattern=_CUSTOM_TOOL_NAME)]
    description: str
    input_schema: CustomToolInputSchema


ToolParams = Annotated[AgentToolsetParams | McpToolsetParams | CustomToolParams, Field(discriminator="type")]

# --- resolved shapes --------------------------------------------------------------------------------------


class ToolsetDefaultConfig(WireModel):
    enabled: bool
    permission_policy: PermissionPolicy


class AgentToolConfig(SparseWireModel):
    """Resolved config of one built-in tool; web tool extras appear only when they were configured."""

    type: AgentToolName
    name: AgentToolName
    enabled: bool
    permission_policy: PermissionPolicy
    allowed_domains: list[str] | None = None
    blocked_domains: list[str] | None = None
    max_content_tokens: int | None = None
    url_sources: Any = None
    user_location: UserLocation | None = None


class AgentToolset(WireModel):
    type: Literal["agent_toolset_20260401"] = "agent_toolset_20260401"
    default_config: ToolsetDefaultConfig
    configs: list[AgentToolConfig]


class McpToolConfig(WireModel):
    name: str
    enabled: bool
    permission_policy: PermissionPolicy


class McpToolset(WireModel):
    type: Literal["mcp_toolset"] = "mcp_toolset"
    mcp_server_name: str
    default_config: ToolsetDefaultConfig
    configs: list[McpToolConfig]


class CustomTool(WireModel):
    type: Literal["custom"] = "custom"
    name: str
    description: str
    input_schema: CustomToolInputSchema


Tool = Annotated[AgentToolset | McpToolset | CustomTool, Field(discriminator="type")]

# --- resolution ---------------------------------------------------------------------------------------


def resolve_tools(tools: Iterable[AgentToolsetParams | McpToolsetParams | CustomToolParams]) -> list[Tool]:
    """Resolve request tools into the response shapes, filling every default."""
    resolved: list[Tool] = []
    for tool in tools:
        if isinstance(tool, AgentToolsetParams):
            resolved.append(_resolve_agent_toolset(tool))
        elif isinstance(tool, McpToolsetParams):
            resolved.append(_resolve_mcp_toolset(tool))
        else:
            schema = tool.input_schema.model_copy(deep=True)
            resolved.append(CustomTool(name=tool.name, description=tool.description, input_schema=schema))
    return resolved


def _resolve_default(
    params: ToolsetDefaultConfigParams | None, policy: AlwaysAllowPolicy | AlwaysAskPolicy
) -> ToolsetDefaultConfig:
    enabled = params.enabled if params is not None and params.enabled is not None else True
    chosen = params.permission_policy if params is not None and params.permission_policy else policy
    return ToolsetDefaultConfig(enabled=enabled, permission_policy=chosen.model_copy())


def _resolve_agent_toolset(params: AgentToolsetParams) -> AgentToolset:
    default = _resolve_default(params.default_config, AlwaysAllowPolicy())
    by_name = {c.name: c for c in params.configs or ()}
    configs: list[AgentToolConfig] = []
    for name in AGENT_TOOL_NAMES:
        override = by_name.get(name)
        enabled = default.enabled
        policy = default.permission_policy
        extras: dict[str, Any] = {}
        if override is not None:
            enabled = override.enabled if override.enabled is not None else enabled
            policy = override.permission_policy or policy
            given = {k: getattr(override, k) for k in _ALL_EXTRAS}
            extras = {k: copy.deepcopy(v) for k, v in given.items() if v is not None}
        configs.append(
            AgentToolConfig(type=name, name=name, enabled=enabled, permission_policy=policy.model_copy(), **extras)
        )
    return AgentToolset(default_config=default, configs=configs)


def _resolve_mcp_toolset(params: McpToolsetParams) -> McpToolset:
    default = _resolve_default(params.default_config, AlwaysAskPolicy())
    configs = [
        McpToolConfig(
            name=c.name,
            enabled=c.enabled if c.enabled is not None else default.enabled,
            permission_policy=(c.permission_policy or default.permission_policy).model_copy(),
        )
        for c in params.configs or ()
    ]
    return McpToolset(mcp_server_name=params.mcp_server_name, default_config=default, configs=configs)


def check_tools(tools: Iterable[object], mcp_server_names: Iterable[str]) -> None:
    """Cross-field rules of §2.1, on request or resolved tools; raises ValueError.

    At most 256 tools and one agent toolset; custom tool names and toolset server names unique; every
    `mcp_toolset` names a declared server and every declared server is used by an `mcp_toolset`.
    """
    tools = list(tools)
    if len(tools) > MAX_TOOLS:
        raise ValueError(f"at most {MAX_TOOLS} tools are allowed, got {len(tools)}")
    servers = list(mcp_server_names)
    _require_unique(servers, "mcp server name")
    toolset_count = sum(isinstance(t, AgentToolsetParams | AgentToolset) for t in tools)
    if toolset_count > 1:
        raise ValueError("at most one agent_toolset_20260401 entry is allowed")
    _require_unique((t.name for t in tools if isinstance(t, CustomToolParams | CustomTool)), "custom tool")
    referenced = [t.mcp_server_name for t in tools if isinstance(t, McpToolsetParams | McpToolset)]
    _require_unique(referenced, "mcp_toolset server")
    missing = sorted(set(referenced) - set(servers))
    if missing:
        raise ValueError(f"mcp_toolset references undeclared mcp_servers: {', '.join(missing)}")
    unused = sorted(set(servers) - set(referenced))
    if unused:
        raise ValueError(f"mcp_servers not referenced by any mcp_toolset: {', '.join(unused)}")


def _require_unique(names: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} {name!r}")
        seen.add(name)
