"""The agent `multiagent` field (spec-2 §3.1): request shapes, the resolved shapes, and the pure merge of an update.

Roster entries name agents three ways (an id string meaning the latest version, `{type:"agent", id, version?}`,
`{type:"self"}`); the runtime resolves them against the store (`runtime/_multiagent.py`) because only it knows
which versions exist. The response always lists `{type:"agent", id, version}`, as the SDK's strict models need.

`workflows` is not built yet: sending it enabled (or null, whose default is enabled) is a clear 400, and an
omitted one resolves to `{type:"disabled"}`. The advisor (a model the primary thread consults mid-turn: a
coordinator's `{type:"advisor", model}` entry or an enabled `advisor`) is the roster member named `advisor`
(`runtime/engine/_threads.py`); a coordinator's roster takes at most one, since its one name addresses it.
`inline_agents` enabled lets the coordinator's model define agents of its own when it delegates
(`InlineAgentDefinition`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ._base import ParamsModel, WireModel

MAX_ROSTER = 20

# --- requests --------------------------------------------------------------------------------------------------


class AgentRefParams(ParamsModel):
    """`{type:"agent", id, version?}`; no version means the latest at resolution time."""

    type: Literal["agent"]
    id: Annotated[str, Field(min_length=1)]
    version: Annotated[int, Field(ge=1)] | None = None


class SelfParams(ParamsModel):
    type: Literal["self"]


class AdvisorParams(ParamsModel):
    type: Literal["advisor"]
    model: Annotated[str, Field(min_length=1)]


RosterEntryParams = (
    Annotated[str, Field(min_length=1)]
    | Annotated[AgentRefParams | SelfParams | AdvisorParams, Field(discriminator="type")]
)
PredefinedAgentParams = (
    Annotated[str, Field(min_length=1)] | Annotated[AgentRefParams | SelfParams, Field(discriminator="type")]
)


class CoordinatorParams(ParamsModel):
    type: Literal["coordinator"]
    agents: Annotated[list[RosterEntryParams], Field(min_length=1, max_length=MAX_ROSTER)]

    @model_validator(mode="after")
    def _one_self(self) -> CoordinatorParams:
        if sum(isinstance(e, SelfParams) for e in self.agents) > 1:
            raise ValueError("a coordinator roster takes at most one {type: 'self'} entry")
        if sum(isinstance(e, AdvisorParams) for e in self.agents) > 1:
            raise ValueError("a coordinator roster takes at most one {type: 'advisor'} entry (its name is `advisor`)")
        return self


class AdvisorEnabledParams(ParamsModel):
    type: Literal["enabled"]
    model: Annotated[str, Field(min_length=1)]


class MemberDisabledParams(ParamsModel):
    type: Literal["disabled"]


class InlineAgentsParams(ParamsModel):
    type: Literal["enabled", "disabled"]


class MembersEnabledParams(ParamsModel):
    """`subagents`/`workflows` enabled; `model_fields_set` tells an omitted key (kept on update) from null."""

    type: Literal["enabled"]
    inline_agents: InlineAgentsParams | None = None
    predefined_agents: Annotated[list[PredefinedAgentParams], Field(max_length=MAX_ROSTER)] | None = None


AdvisorMemberParams = Annotated[AdvisorEnabledParams | MemberDisabledParams, Field(discriminator="type")]
MembersParams = Annotated[MembersEnabledParams | MemberDisabledParams, Field(discriminator="type")]


class Multiagent20261001Params(ParamsModel):
    """Members omitted keep their stored value on update (their default on create); null takes the default."""

    type: Literal["multiagent_20261001"]
    advisor: AdvisorMemberParams | None = None
    subagents: MembersParams | None = None
    workflows: MembersParams | None = None

    @model_validator(mode="after")
    def _no_workflows(self) -> Multiagent20261001Params:
        if "workflows" in self.model_fields_set and not isinstance(self.workflows, MemberDisabledParams):
            raise ValueError(
                "multiagent workflows are not supported by this server yet: omit `workflows` or send "
                "{type: 'disabled'} (a null workflows means enabled)"
            )
        return self


MultiagentParams = Annotated[CoordinatorParams | Multiagent20261001Params, Field(discriminator="type")]

# --- resolved ----------------------------------------------------------------------------------------------------


class AgentReference(WireModel):
    type: Literal["agent"] = "agent"
    id: str
    version: int


class Advisor(WireModel):
    type: Literal["advisor"] = "advisor"
    model: str


CoordinatorEntry = Annotated[AgentReference | Advisor, Field(discriminator="type")]


class Coordinator(WireModel):
    type: Literal["coordinator"] = "coordinator"
    agents: list[CoordinatorEntry]


class AdvisorEnabled(WireModel):
    type: Literal["enabled"] = "enabled"
    model: str


class MemberDisabled(WireModel):
    type: Literal["disabled"] = "disabled"


class InlineAgents(WireModel):
    type: Literal["enabled", "disabled"] = "enabled"


class MembersEnabled(WireModel):
    type: Literal["enabled"] = "enabled"
    inline_agents: InlineAgents = Field(default_factory=InlineAgents)
    predefined_agents: list[AgentReference] = Field(default_factory=list)


AdvisorMember = Annotated[AdvisorEnabled | MemberDisabled, Field(discriminator="type")]
Members = Annotated[MembersEnabled | MemberDisabled, Field(discriminator="type")]


class Multiagent20261001(WireModel):
    type: Literal["multiagent_20261001"] = "multiagent_20261001"
    advisor: AdvisorMember = Field(default_factory=MemberDisabled)
    subagents: Members = Field(default_factory=MembersEnabled)
    workflows: Members = Field(default_factory=MemberDisabled)


Multiagent = Annotated[Coordinator | Multiagent20261001, Field(discriminator="type")]
"""The resolved `multiagent` of an agent, as stored and returned."""

# --- inline agents -----------------------------------------------------------------------------------------------


class InlineAgentDefinition(ParamsModel):
    """An inline agent as a coordinator's model defines it in loophost's delegation tool (`send_to_agent
    {"agent": {...}, "message": TEXT}`, `runtime/engine/_threads.py`); not an SDK request shape, since the
    delegation tools are loophost's. Its thread shows the SDK's `{type:"inline", ...}` agent. No `tools`,
    `skills` or `mcp_servers` in this first version: an inline agent runs with none, so they are rejected."""

    name: Annotated[str, Field(min_length=1, max_length=255, pattern=r"\S")]
    system: Annotated[str, Field(max_length=100_000)] | None = None
    model: Annotated[str, Field(min_length=1)] | None = None
    """A model id; none: the coordinator's model."""
    description: Annotated[str, Field(max_length=2048)] | None = None


# --- merge -------------------------------------------------------------------------------------------------------

Unresolved = AgentReference | AgentRefParams | SelfParams | str
"""A predefined-agent entry before resolution: stored ones are already references."""


def merge_members(
    stored: MembersEnabled | MemberDisabled, sent: MembersEnabledParams | MemberDisabledParams | None, given: bool
) -> tuple[str, str, list[Unresolved]]:
    """One `subagents`/`workflows` member after an update's merge: (type, inline_agents type, entries)."""
    if not given:
        if isinstance(stored, MemberDisabled):
            return "disabled", "enabled", []
        return "enabled", stored.inline_agents.type, list(stored.predefined_agents)
    if sent is None:
        return "enabled", "enabled", []
    if isinstance(sent, MemberDisabledParams):
        return "disabled", "enabled", []
    base = stored if isinstance(stored, MembersEnabled) else MembersEnabled()
    fields = sent.model_fields_set
    inline = base.inline_agents.type
    if "inline_agents" in fields:
        inline = sent.inline_agents.type if sent.inline_agents is not None else "enabled"
    entries: list[Unresolved] = list(base.predefined_agents)
    if "predefined_agents" in fields:
        entries = list(sent.predefined_agents or ())
    return "enabled", inline, entries


def merge_advisor(stored: AdvisorEnabled | MemberDisabled, sent: Any, given: bool) -> AdvisorEnabled | MemberDisabled:
    if not given:
        return stored.model_copy()
    if isinstance(sent, AdvisorEnabledParams):
        return AdvisorEnabled(model=sent.model)
    return MemberDisabled()
