"""Sessions (spec §4) and threads (§9): bodies, the agent snapshot, `Session` and `SessionThread`."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from ._agents import (
    Agent,
    ExecutionIdentity,
    McpServer,
    McpServerParams,
    ServiceAccountIdentity,
    Skill,
    SkillParams,
    SystemStr,
    resolve_mcp_servers,
    resolve_skills,
)
from ._base import ParamsModel, Timestamp, WireModel
from ._event_params import InitialEventParams
from ._metadata import check_metadata
from ._model_config import ModelConfig, ModelParam, resolve_model
from ._multiagent import Advisor, AdvisorEnabled, InlineAgents, MemberDisabled
from ._resources import SessionResource, SessionResourceParams
from ._stop import SessionStatus
from ._tools import Tool, ToolParams, check_tools, resolve_tools
from ._usage import Budget, SessionStats, SessionThreadStats, SessionUsage

MAX_INITIAL_EVENTS = 50


class SessionThreadAgent(WireModel):
    """Snapshot of an agent as a thread runs it (no roster: that is on `Session.agent`)."""

    type: Literal["agent"] = "agent"
    id: str
    version: int
    name: str
    description: str | None = None
    system: str | None = None
    model: ModelConfig
    tools: list[Tool] = Field(default_factory=list)
    mcp_servers: list[McpServer] = Field(default_factory=list)
    skills: list[Skill] = Field(default_factory=list)
    execution_identity: ExecutionIdentity = Field(default_factory=ServiceAccountIdentity)

    @classmethod
    def from_agent(cls, agent: Agent | SessionThreadAgent) -> SessionThreadAgent:
        fields = {name: getattr(agent, name) for name in SessionThreadAgent.model_fields if name != "type"}
        return SessionThreadAgent.model_validate(fields).model_copy(deep=True)


class SessionCoordinator(WireModel):
    """A coordinator roster with every agent as a full snapshot (spec-2 §3.1)."""

    type: Literal["coordinator"] = "coordinator"
    agents: list[Annotated[SessionThreadAgent | Advisor, Field(discriminator="type")]]


class SessionMembersEnabled(WireModel):
    type: Literal["enabled"] = "enabled"
    inline_agents: InlineAgents = Field(default_factory=InlineAgents)
    predefined_agents: list[SessionThreadAgent] = Field(default_factory=list)


SessionMembers = Annotated[SessionMembersEnabled | MemberDisabled, Field(discriminator="type")]


class SessionMultiagent20261001(WireModel):
    type: Literal["multiagent_20261001"] = "multiagent_20261001"
    advisor: Annotated[AdvisorEnabled | MemberDisabled, Field(discriminator="type")] = Field(
        default_factory=MemberDisabled
    )
    subagents: SessionMembers = Field(default_factory=SessionMembersEnabled)
    workflows: SessionMembers = Field(default_factory=MemberDisabled)


SessionMultiagent = Annotated[SessionCoordinator | SessionMultiagent20261001, Field(discriminator="type")]
"""`session.agent.multiagent`: the agent's roster resolved to snapshots when the session was created."""


class SessionAgent(SessionThreadAgent):
    """Snapshot of the resolved agent a session runs, overrides applied; no metadata or timestamps."""

    multiagent: SessionMultiagent | None = None

    @classmethod
    def from_agent(cls, agent: Agent | SessionThreadAgent) -> SessionAgent:
        """The snapshot without its roster (the runtime resolves `multiagent` against the store)."""
        return SessionAgent.model_validate(SessionThreadAgent.from_agent(agent).model_dump())


class AgentReferenceParams(ParamsModel):
    """`{type:"agent", id, version?}`; no version means the latest at create time."""

    type: Literal["agent"] = "agent"
    id: Annotated[str, Field(min_length=1)]
    version: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None


class AgentWithOverridesParams(ParamsModel):
    """An agent plus session-local, full-replacement overrides; the stored agent is unchanged."""

    type: Literal["agent_with_overrides"] = "agent_with_overrides"
    id: Annotated[str, Field(min_length=1)]
    version: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    model: ModelParam | None = None
    system: SystemStr | None = None
    tools: list[ToolParams] | None = None
    mcp_servers: list[McpServerParams] | None = None
    skills: list[SkillParams] | None = None


def _id_string_as_reference(value: Any) -> Any:
    return {"type": "agent", "id": value} if isinstance(value, str) else value


SessionAgentRef = Annotated[
    AgentReferenceParams | AgentWithOverridesParams,
    BeforeValidator(_id_string_as_reference),
    Field(discriminator="type"),
]
"""`agent` of a create body. The bare id string form parses as `AgentReferenceParams(version=None)`."""


class SessionCreateParams(ParamsModel):
    """`POST /v1/sessions`."""

    agent: SessionAgentRef
    environment_id: Annotated[str, Field(min_length=1)]
    initial_events: Annotated[list[InitialEventParams], Field(max_length=MAX_INITIAL_EVENTS)] | None = None
    resources: list[SessionResourceParams] | None = None
    title: str | None = None
    metadata: dict[str, str] | None = None
    vault_ids: list[str] | None = None
    budget: Budget | None = None

    @model_validator(mode="after")
    def _limits(self) -> SessionCreateParams:
        check_metadata(self.metadata or {})
        return self


class SessionAgentUpdateParams(ParamsModel):
    """The only agent fields a session update may change; each is a full replacement."""

    tools: list[ToolParams] | None = None
    mcp_servers: list[McpServerParams] | None = None


class SessionUpdateParams(ParamsModel):
    """`POST /v1/sessions/{id}`. `vault_ids` is parsed only so the runtime can reject it with a clear 400;
    `budget: null` removes the budget; `metadata` is a key-wise patch."""

    title: str | None = None
    metadata: dict[str, str | None] | None = None
    agent: SessionAgentUpdateParams | None = None
    budget: Budget | None = None
    vault_ids: list[str] | None = None

    @model_validator(mode="after")
    def _limits(self) -> SessionUpdateParams:
        check_metadata(self.metadata or {})
        return self


class OutcomeEvaluation(WireModel):
    """State of one `user.define_outcome`; `result` pending/running/evaluating or a terminal verdict."""

    type: Literal["outcome_evaluation"] = "outcome_evaluation"
    outcome_id: str
    description: str
    iteration: int = 0
    result: str = "pending"
    explanation: str | None = None
    completed_at: Timestamp | None = None


class Session(WireModel):
    """The `session` resource (§4.2)."""

    id: str
    type: Literal["session"] = "session"
    status: SessionStatus = "idle"
    title: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    environment_id: str
    agent: SessionAgent
    resources: list[SessionResource] = Field(default_factory=list)
    vault_ids: list[str] = Field(default_factory=list)
    usage: SessionUsage = Field(default_factory=SessionUsage)
    stats: SessionStats = Field(default_factory=SessionStats)
    outcome_evaluations: list[OutcomeEvaluation] = Field(default_factory=list)
    budget: Budget | None = None
    deployment_id: str | None = None
    created_at: Timestamp
    updated_at: Timestamp
    archived_at: Timestamp | None = None


class AdvisorThreadAgent(WireModel):
    type: Literal["advisor"] = "advisor"
    model: str


class InlineThreadAgent(WireModel):
    """An agent defined inline when a thread is spawned; it has no id or version."""

    type: Literal["inline"] = "inline"
    name: str
    description: str | None = None
    system: str | None = None
    model: ModelConfig
    tools: list[Tool] = Field(default_factory=list)
    mcp_servers: list[McpServer] = Field(default_factory=list)
    skills: list[Skill] = Field(default_factory=list)
    execution_identity: ExecutionIdentity = Field(default_factory=ServiceAccountIdentity)


ThreadAgent = Annotated[SessionThreadAgent | AdvisorThreadAgent | InlineThreadAgent, Field(discriminator="type")]


class SessionThread(WireModel):
    """A `session_thread` (§9). The primary thread has `parent_thread_id=None`."""

    type: Literal["session_thread"] = "session_thread"
    id: str
    session_id: str
    agent: ThreadAgent
    parent_thread_id: str | None = None
    status: SessionStatus = "idle"
    created_at: Timestamp
    updated_at: Timestamp
    archived_at: Timestamp | None = None
    stats: SessionThreadStats | None = None
    usage: SessionUsage | None = None
    workflow_run_id: str | None = None


def apply_agent_overrides(snapshot: SessionAgent, overrides: AgentWithOverridesParams) -> SessionAgent:
    """Apply `agent_with_overrides` to a snapshot (raises ValueError when tools and servers disagree).

    Each given field replaces the snapshot's. In a model override `effort` is ignored (the agent's is
    kept) while `speed` and `inference_geo` apply; `system: null` clears the system prompt.
    """
    given = overrides.model_fields_set
    new: dict[str, Any] = {}
    if "model" in given and overrides.model is not None:
        model = resolve_model(overrides.model)
        new["model"] = model.model_copy(update={"effort": snapshot.model.effort})
    if "system" in given:
        new["system"] = overrides.system
    if "tools" in given:
        new["tools"] = resolve_tools(overrides.tools or ())
    if "mcp_servers" in given:
        new["mcp_servers"] = resolve_mcp_servers(overrides.mcp_servers)
    if "skills" in given:
        new["skills"] = resolve_skills(overrides.skills)
    return _checked(snapshot, new)


def apply_session_agent_update(snapshot: SessionAgent, params: SessionAgentUpdateParams) -> SessionAgent:
    """Apply a session update's `agent: {tools?, mcp_servers?}` (full replacement, null or [] clears)."""
    given = params.model_fields_set
    new: dict[str, Any] = {}
    if "tools" in given:
        new["tools"] = resolve_tools(params.tools or ())
    if "mcp_servers" in given:
        new["mcp_servers"] = resolve_mcp_servers(params.mcp_servers)
    return _checked(snapshot, new)


def _checked(snapshot: SessionAgent, new: dict[str, Any]) -> SessionAgent:
    updated = snapshot.model_copy(update=copy.deepcopy(new), deep=True)
    check_tools(updated.tools, (s.name for s in updated.mcp_servers))
    return updated
