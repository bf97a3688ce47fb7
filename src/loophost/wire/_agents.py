"""Agents (spec §2): create/update bodies, the resolved `Agent`, and the pure create/update resolution.

`AgentConfig` is the versioned content of an agent (everything but id, version and timestamps). The
runtime resolves a create body with `resolve_agent_create`, and an update with `apply_agent_update`,
then compares the result with `agent.config()`: equal means a no-op update (no new version).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ._base import ParamsModel, Timestamp, WireModel
from ._metadata import check_metadata, patch_metadata
from ._model_config import ModelConfig, ModelParam, resolve_model
from ._multiagent import Multiagent, MultiagentParams
from ._tools import Tool, ToolParams, check_tools, resolve_tools

NameStr = Annotated[str, Field(min_length=1, max_length=256)]
DescriptionStr = Annotated[str, Field(max_length=2048)]
SystemStr = Annotated[str, Field(max_length=100_000)]
MAX_MCP_SERVERS = 20


class McpServer(WireModel):
    """`{type:"url", name, url}`; auth comes from session vaults, matched by URL."""

    type: Literal["url"] = "url"
    name: str
    url: str


class McpServerParams(ParamsModel):
    type: Literal["url"] = "url"
    name: Annotated[str, Field(min_length=1, max_length=255)]
    url: Annotated[str, Field(min_length=1)]


class Skill(WireModel):
    """A resolved skill; `version` is always a string."""

    type: Literal["anthropic", "custom"]
    skill_id: str
    version: str


class SkillParams(ParamsModel):
    """A skill in a request; an omitted `version` resolves to `"latest"` (inferred)."""

    type: Literal["anthropic", "custom"]
    skill_id: Annotated[str, Field(min_length=1)]
    version: str | None = None


class ServiceAccountIdentity(WireModel):
    type: Literal["service_account"] = "service_account"


class AwsRoleIdentity(WireModel):
    type: Literal["aws_role"] = "aws_role"
    role_arn: Annotated[str, Field(min_length=1, max_length=2048)]


ExecutionIdentity = Annotated[ServiceAccountIdentity | AwsRoleIdentity, Field(discriminator="type")]


class AgentConfig(WireModel):
    """The versioned, fully resolved content of an agent."""

    name: str
    description: str | None = None
    system: str | None = None
    model: ModelConfig
    tools: list[Tool] = Field(default_factory=list)
    mcp_servers: list[McpServer] = Field(default_factory=list)
    skills: list[Skill] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    multiagent: Multiagent | None = None
    execution_identity: ExecutionIdentity = Field(default_factory=ServiceAccountIdentity)


class Agent(WireModel):
    """The `agent` resource, always fully resolved (model object, toolset defaults, identity)."""

    id: str
    type: Literal["agent"] = "agent"
    name: str
    description: str | None = None
    system: str | None = None
    model: ModelConfig
    tools: list[Tool] = Field(default_factory=list)
    mcp_servers: list[McpServer] = Field(default_factory=list)
    skills: list[Skill] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    multiagent: Multiagent | None = None
    execution_identity: ExecutionIdentity = Field(default_factory=ServiceAccountIdentity)
    version: int = 1
    created_at: Timestamp
    updated_at: Timestamp
    archived_at: Timestamp | None = None

    def config(self) -> AgentConfig:
        """The versioned content of this agent (deep copy)."""
        return AgentConfig.model_validate({name: getattr(self, name) for name in AgentConfig.model_fields}).model_copy(
            deep=True
        )

    def with_config(self, config: AgentConfig, **changes: Any) -> Agent:
        """A copy carrying `config`, plus other field changes such as `version` and `updated_at`.

        Like `model_copy(update=...)` the changes are not validated: pass values of the field types."""
        fields = {name: getattr(config, name) for name in AgentConfig.model_fields}
        return self.model_copy(update=copy.deepcopy({**fields, **changes}))


class AgentCreateParams(ParamsModel):
    """`POST /v1/agents` body. Cross-field rules: unique server names, toolsets match servers."""

    name: NameStr
    model: ModelParam
    description: DescriptionStr | None = None
    system: SystemStr | None = None
    tools: list[ToolParams] | None = None
    mcp_servers: Annotated[list[McpServerParams], Field(max_length=MAX_MCP_SERVERS)] | None = None
    skills: list[SkillParams] | None = None
    metadata: dict[str, str] | None = None
    multiagent: MultiagentParams | None = None
    execution_identity: ExecutionIdentity | None = None

    @model_validator(mode="after")
    def _cross_field(self) -> AgentCreateParams:
        check_metadata(self.metadata or {})
        check_tools(self.tools or (), (s.name for s in self.mcp_servers or ()))
        return self


class AgentUpdateParams(ParamsModel):
    """`POST /v1/agents/{id}` body: a patch. Use `model_fields_set` to tell omitted from null.

    `version`, when given, is the optimistic lock (mismatch -> 409). Reference rules between `tools`
    and `mcp_servers` are checked by `apply_agent_update` on the merged result.
    """

    name: NameStr | None = None
    model: ModelParam | None = None
    description: DescriptionStr | None = None
    system: SystemStr | None = None
    tools: list[ToolParams] | None = None
    mcp_servers: Annotated[list[McpServerParams], Field(max_length=MAX_MCP_SERVERS)] | None = None
    skills: list[SkillParams] | None = None
    metadata: dict[str, str | None] | None = None
    multiagent: MultiagentParams | None = None
    execution_identity: ExecutionIdentity | None = None
    version: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _not_clearable(self) -> AgentUpdateParams:
        for name in ("name", "model"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be cleared")
        if self.metadata is not None:
            check_metadata(self.metadata)
        return self


def resolve_mcp_servers(servers: Sequence[McpServerParams] | None) -> list[McpServer]:
    """Request servers as the response lists them (null -> [])."""
    return [McpServer(name=s.name, url=s.url) for s in servers or ()]


def resolve_skills(skills: Sequence[SkillParams] | None) -> list[Skill]:
    """Request skills with their version pinned (`"latest"` when omitted)."""
    return [Skill(type=s.type, skill_id=s.skill_id, version=s.version or "latest") for s in skills or ()]


def resolve_agent_create(params: AgentCreateParams) -> AgentConfig:
    """The resolved content of a new agent (version 1)."""
    return AgentConfig(
        name=params.name,
        description=params.description,
        system=params.system,
        model=resolve_model(params.model),
        tools=resolve_tools(params.tools or ()),
        mcp_servers=resolve_mcp_servers(params.mcp_servers),
        skills=resolve_skills(params.skills),
        metadata=dict(params.metadata or {}),
        multiagent=None,  # resolved against the store by the runtime (`runtime/_multiagent.py`)
        execution_identity=(
            params.execution_identity.model_copy() if params.execution_identity else ServiceAccountIdentity()
        ),
    )


def apply_agent_update(current: Agent | AgentConfig, params: AgentUpdateParams) -> AgentConfig:
    """The agent content after applying the patch rules of §2.1 (raises ValueError on a bad result).

    Omitted = preserve. `description`/`system`: null or "" clears. `tools`, `mcp_servers`, `skills`,
    `execution_identity`: full replacement, null clears (identity back to the service account).
    `multiagent` is kept here: the runtime resolves and merges it against the store. `metadata`: key-wise
    patch, a null value deletes the key (the whole field null clears the bag). `model`: whole-object
    replacement, except that omitting `effort` keeps it.
    """
    base = current.config() if isinstance(current, Agent) else current.model_copy(deep=True)
    given = params.model_fields_set
    new: dict[str, Any] = {}
    if "name" in given and params.name is not None:
        new["name"] = params.name
    if "model" in given and params.model is not None:
        new["model"] = resolve_model(params.model, current=base.model)
    for text in ("description", "system"):
        if text in given:
            new[text] = getattr(params, text) or None
    if "tools" in given:
        new["tools"] = resolve_tools(params.tools or ())
    if "mcp_servers" in given:
        new["mcp_servers"] = resolve_mcp_servers(params.mcp_servers)
    if "skills" in given:
        new["skills"] = resolve_skills(params.skills)
    if "metadata" in given:
        new["metadata"] = patch_metadata(base.metadata, params.metadata)
    if "execution_identity" in given:
        new["execution_identity"] = params.execution_identity or ServiceAccountIdentity()
    updated = base.model_copy(update=copy.deepcopy(new))
    check_tools(updated.tools, (s.name for s in updated.mcp_servers))
    return updated
