"""Resolving an agent's `multiagent` field against the store (spec-2 §3.1).

Roster entries become `{type:"agent", id, version}`: an id string is the latest version, `self` is the agent's
own id at the version being written. An entry naming the agent itself is a self entry: every new version of the
agent re-pins it to that version (`repin`), so "self" always means the version that holds the roster. Other
agents must exist in the workspace, be unarchived and have no `multiagent` of their own (depth 1).

A session snapshots the roster as full agent definitions (`session_multiagent`); self copies take the session's
overrides, as the coordinator does.
"""

from __future__ import annotations

from .. import wire
from ._errors import InvalidRequest, NotFound
from .store import Store

Entry = wire.AgentReference | wire.AgentRefParams | wire.SelfParams | str


async def resolve_multiagent(
    store: Store,
    workspace: str,
    params: wire.MultiagentParams,
    *,
    stored: wire.Multiagent | None,
    agent_id: str,
    version: int,
) -> wire.Multiagent:
    """The resolved value of a create (`stored` None) or an update's `multiagent` (merged into `stored`)."""
    resolver = _Resolver(store, workspace, agent_id, version)
    if isinstance(params, wire.CoordinatorParams):
        agents: list[wire.AgentReference | wire.Advisor] = []
        for entry in params.agents:
            if isinstance(entry, wire.AdvisorParams):
                agents.append(wire.Advisor(model=entry.model))
            else:
                agents.append(await resolver.reference(entry))
        _distinct(agents)
        return wire.Coordinator(agents=agents)
    base = stored if isinstance(stored, wire.Multiagent20261001) else wire.Multiagent20261001()
    given = params.model_fields_set
    advisor = wire.merge_advisor(base.advisor, params.advisor, "advisor" in given)
    members: dict[str, wire.MembersEnabled | wire.MemberDisabled] = {}
    for name in ("subagents", "workflows"):
        kind, inline, entries = wire.merge_members(getattr(base, name), getattr(params, name), name in given)
        if kind == "disabled":
            members[name] = wire.MemberDisabled()
            continue
        refs = [await resolver.reference(e) for e in entries]
        _distinct(refs)
        if inline == "disabled" and not refs:
            raise InvalidRequest(
                f"multiagent {name}: with inline_agents disabled, predefined_agents must name at least one agent",
                code="invalid_agent",
            )
        members[name] = wire.MembersEnabled(
            inline_agents=wire.InlineAgents(type="disabled" if inline == "disabled" else "enabled"),
            predefined_agents=refs,
        )
    return wire.Multiagent20261001(advisor=advisor, subagents=members["subagents"], workflows=members["workflows"])


def repin(multiagent: wire.Multiagent | None, agent_id: str, version: int) -> wire.Multiagent | None:
    """The roster with its self entries pointing at `version` (the version about to be written)."""
    if multiagent is None:
        return None

    def pin(ref: wire.AgentReference) -> wire.AgentReference:
        return wire.AgentReference(id=agent_id, version=version) if ref.id == agent_id else ref

    if isinstance(multiagent, wire.Coordinator):
        entries = [pin(e) if isinstance(e, wire.AgentReference) else e for e in multiagent.agents]
        return multiagent.model_copy(update={"agents": entries})
    update = {}
    for name in ("subagents", "workflows"):
        member = getattr(multiagent, name)
        if isinstance(member, wire.MembersEnabled):
            update[name] = member.model_copy(update={"predefined_agents": [pin(r) for r in member.predefined_agents]})
    return multiagent.model_copy(update=update)


async def session_multiagent(
    store: Store, workspace: str, agent: wire.Agent, snapshot: wire.SessionAgent
) -> wire.SessionMultiagent | None:
    """`session.agent.multiagent`: every roster entry as a full snapshot; self copies are the session's own."""
    multiagent = agent.multiagent
    if multiagent is None:
        return None

    async def full(ref: wire.AgentReference) -> wire.SessionThreadAgent:
        if ref.id == agent.id:
            return wire.SessionThreadAgent.from_agent(snapshot)
        row = await store.get_agent(workspace, ref.id, ref.version)
        if row is None:
            raise NotFound(f"agent {ref.id!r} version {ref.version} of the roster not found", resource="agent")
        return wire.SessionThreadAgent.from_agent(wire.Agent.model_validate_json(row.body))

    if isinstance(multiagent, wire.Coordinator):
        entries: list[wire.SessionThreadAgent | wire.Advisor] = []
        for entry in multiagent.agents:
            entries.append(await full(entry) if isinstance(entry, wire.AgentReference) else entry.model_copy())
        return wire.SessionCoordinator(agents=entries)
    members: dict[str, wire.SessionMembersEnabled | wire.MemberDisabled] = {}
    for name in ("subagents", "workflows"):
        member = getattr(multiagent, name)
        if isinstance(member, wire.MembersEnabled):
            members[name] = wire.SessionMembersEnabled(
                inline_agents=member.inline_agents.model_copy(),
                predefined_agents=[await full(r) for r in member.predefined_agents],
            )
        else:
            members[name] = wire.MemberDisabled()
    return wire.SessionMultiagent20261001(
        advisor=multiagent.advisor.model_copy(), subagents=members["subagents"], workflows=members["workflows"]
    )


def _distinct(entries: list[wire.AgentReference | wire.Advisor] | list[wire.AgentReference]) -> None:
    seen: set[str] = set()
    for entry in entries:
        key = entry.id if isinstance(entry, wire.AgentReference) else f"advisor:{entry.model}"
        if key in seen:
            raise InvalidRequest(f"multiagent entries must be distinct; {key!r} is listed twice", code="invalid_agent")
        seen.add(key)


class _Resolver:
    def __init__(self, store: Store, workspace: str, agent_id: str, version: int) -> None:
        self._store = store
        self._workspace = workspace
        self._agent_id = agent_id
        self._version = version

    async def reference(self, entry: Entry) -> wire.AgentReference:
        if isinstance(entry, wire.AgentReference):  # already resolved (kept from the stored value)
            return entry.model_copy()
        if isinstance(entry, wire.SelfParams):
            return wire.AgentReference(id=self._agent_id, version=self._version)
        agent_id, version = (entry, None) if isinstance(entry, str) else (entry.id, entry.version)
        if agent_id == self._agent_id:
            return wire.AgentReference(id=self._agent_id, version=self._version)
        row = await self._store.get_agent(self._workspace, agent_id, version)
        if row is None:
            what = f"agent {agent_id!r}" + (f" version {version}" if version is not None else "")
            raise NotFound(f"{what} of the multiagent roster not found", resource="agent")
        if row.archived_at is not None:
            raise InvalidRequest(f"agent {agent_id!r} of the multiagent roster is archived", code="invalid_agent")
        if wire.Agent.model_validate_json(row.body).multiagent is not None:
            raise InvalidRequest(
                f"agent {agent_id!r} has multiagent set itself; rosters are one level deep", code="invalid_agent"
            )
        return wire.AgentReference(id=agent_id, version=row.version)
