"""Whom a coordinator's `send_to_agent` addresses: an agent of its roster, or an inline agent (spec-2 §3.1,
`multiagent_20261001.subagents.inline_agents`) that its model defines in the call (`_threads.py` runs both on
child threads alike).

Inline agents are allowed for `multiagent_20261001` with subagents and their `inline_agents` enabled (the
default), never for a `coordinator` roster. The definition is `send_to_agent {"agent": {"name": NAME, "system"?,
"model"? (default: the coordinator's), "description"?}, "message": TEXT}` (`wire.InlineAgentDefinition`); it runs
with the coordinator's execution identity and no tools, skills or MCP servers in this first version. Its thread's
agent has the id `inline:NAME` (`runtime/_threads.py`, whose thread object shows the SDK's `{type:"inline", ...}`
agent), from which the thread id derives, so a retried delegation finds its thread and a later call with the same
name (a definition, or the plain name) continues it. A roster name, a definition contradicting the thread's, an
inline definition where inline agents are not allowed, or under a budget a model without a list price, is an
error result for the model, never an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from ... import wire
from .. import _budgets as budgets
from .._state import ChildThread
from .._threads import INLINE_AGENT_PREFIX, inline_agent_id
from ..store import Store
from ._history import Result


class Roster(list[wire.SessionThreadAgent]):
    """The agents a coordinator may delegate to, and whether its model may define inline agents: `inline` is the
    coordinator when it may (their default model and execution identity are its own), else None and `no_inline`
    says why."""

    def __init__(
        self,
        members: Iterable[wire.SessionThreadAgent] = (),
        inline: wire.SessionAgent | None = None,
        no_inline: str = "",
    ) -> None:
        super().__init__(members)
        self.inline = inline
        self.no_inline = no_inline or "this agent has no multiagent configuration"

    @property
    def can_delegate(self) -> bool:
        """Whether the coordinator gets the delegation tools: it has a roster, or may define inline agents."""
        return len(self) > 0 or self.inline is not None

    def find(self, name: str) -> wire.SessionThreadAgent | None:
        """By id first, then by name: `advisor` is the advisor even if a roster agent has that name too."""
        by_id = next((a for a in self if a.id == name), None)
        return by_id or next((a for a in self if a.name == name), None)

    def listing(self) -> dict[str, Any]:
        """What `list_agents` answers: the roster, and whether inline agents are allowed."""
        agents = [{"name": a.name, "description": a.description, "model": a.model.id} for a in self]
        if self.inline is None:
            return {"agents": agents, "inline_agents": {"allowed": False, "why": self.no_inline}}
        how = 'send_to_agent with {"agent": {"name", "system"?, "model"?, "description"?}} defines one (no tools)'
        return {"agents": agents, "inline_agents": {"allowed": True, "how": how}}


AGENT_SCHEMA = {
    "anyOf": [
        {"type": "string", "description": "An agent of your roster (name or id), or an inline agent you defined."},
        {
            "type": "object",
            "description": "An inline agent to define (or to continue, by its name); it has no tools.",
            "properties": {
                "name": {"type": "string"},
                "system": {"type": "string", "description": "its instructions"},
                "model": {"type": "string", "description": "a model id; default: yours"},
                "description": {"type": "string"},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
    ]
}
"""The `agent` of `send_to_agent` as the coordinator's model sees it."""


async def address(
    roster: Roster, value: Any, *, known: Mapping[str, ChildThread], store: Store, workspace: str, budgeted: bool
) -> tuple[str, str, wire.SessionThreadAgent | None] | Result:
    """Whom a call's `agent` addresses, as (agent id, name, the agent a new thread runs: None for an inline agent
    whose thread exists), or an error result. `known`: the coordinator's threads by agent id; `workspace`: where
    they live; `budgeted`: the session has a budget."""
    if isinstance(value, str):
        member = roster.find(value)
        if member is not None:
            return member.id, member.name, member
        if inline_agent_id(value) in known:
            return inline_agent_id(value), value, None
        inline_names = [t.name for t in known.values() if t.agent_id.startswith(INLINE_AGENT_PREFIX)]
        names = ", ".join([a.name for a in roster] + inline_names) or "none"
        return Result(f"No agent {value!r} on your roster; the agents are: {names}.", True)
    if not isinstance(value, dict):
        return Result('send_to_agent needs `agent`: a name, or an inline agent\'s definition {"name": ...}.', True)
    if roster.inline is None:
        return Result(f"You cannot define inline agents here: {roster.no_inline}. Use list_agents.", True)
    try:
        definition = wire.InlineAgentDefinition.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'agent'}: {e['msg']}" for e in exc.errors())
        return Result(f"Invalid inline agent ({problems}). It takes name, system, model and description only.", True)
    name, agent_id = definition.name, inline_agent_id(definition.name)
    if roster.find(name) is not None:
        return Result(f"{name!r} names an agent of your roster: give your inline agent another name.", True)
    if agent_id in known:
        row = await store.get_session(workspace, known[agent_id].id)
        stored = wire.Session.model_validate_json(row.body).agent if row is not None else None
        given = definition.model_dump(exclude_unset=True, exclude_none=True)
        if stored is not None and any(_defined(stored, k) != v for k, v in given.items()):
            return Result(f"Inline agent {name!r} exists with another definition: choose a new name.", True)
        return agent_id, name, None
    coordinator = roster.inline
    model = wire.ModelConfig(id=definition.model) if definition.model else coordinator.model.model_copy(deep=True)
    if budgeted and not await asyncio.to_thread(budgets.has_list_price, model.id):
        return Result(f"Model {model.id!r} has no list price, so it cannot run under this session's budget.", True)
    agent = wire.SessionThreadAgent(
        id=agent_id,
        version=1,
        name=name,
        description=definition.description,
        system=definition.system,
        model=model,
        execution_identity=coordinator.execution_identity.model_copy(deep=True),
    )
    return agent_id, name, agent


def _defined(agent: wire.SessionAgent, field: str) -> Any:
    """A field of an inline agent's definition, as its thread's agent holds it."""
    return agent.model.id if field == "model" else getattr(agent, field)
