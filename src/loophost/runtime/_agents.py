"""Agents: declarative definitions with immutable versions."""

from __future__ import annotations

from datetime import datetime

from .. import wire
from ._clock import now, rfc3339
from ._core import RuntimeCore
from ._cursors import check_limit, cut_page, decode, encode, integer, keyset
from ._errors import Conflict, InvalidRequest, NotFound
from ._ids import new_id
from ._multiagent import repin, resolve_multiagent
from ._webhook_events import outbox_event
from .store import AgentRow, ListQuery


def _agent(row: AgentRow) -> wire.Agent:
    """A stored version, with the agent-level `archived_at` laid over it."""
    agent = wire.Agent.model_validate_json(row.body)
    if row.archived_at is not None:
        agent = agent.model_copy(update={"archived_at": datetime.fromisoformat(row.archived_at)})
    return agent


class AgentsMixin(RuntimeCore):
    async def create_agent(self, workspace: str, params: wire.AgentCreateParams) -> wire.Agent:
        ts = now()
        try:
            config = wire.resolve_agent_create(params)
        except ValueError as exc:
            raise InvalidRequest(str(exc), code="invalid_agent") from exc
        agent_id = new_id("agent")
        if params.multiagent is not None:
            multiagent = await resolve_multiagent(
                self.store, workspace, params.multiagent, stored=None, agent_id=agent_id, version=1
            )
            config = config.model_copy(update={"multiagent": multiagent})
        agent = wire.Agent.model_validate(
            {
                **config.model_dump(),
                "id": agent_id,
                "version": 1,
                "created_at": ts,
                "updated_at": ts,
                "archived_at": None,
            }
        )
        await self.store.insert_agent(
            AgentRow(workspace, agent.id, 1, rfc3339(ts), None, agent.model_dump_json(by_alias=True)),
            webhooks=[outbox_event("agent.created", agent.id, workspace, at=rfc3339(ts))],
        )
        self.writer.on_outbox()  # the deliverer sends it now, not at its next poll
        return agent

    async def get_agent(self, workspace: str, agent_id: str, version: int | None = None) -> wire.Agent:
        if version is not None and version < 1:
            raise InvalidRequest("version must be >= 1", code="invalid_version")
        row = await self.store.get_agent(workspace, agent_id, version)
        if row is None:
            what = f"agent {agent_id!r}" + (f" version {version}" if version is not None else "")
            raise NotFound(f"{what} not found", resource="agent")
        return _agent(row)

    async def update_agent(self, workspace: str, agent_id: str, params: wire.AgentUpdateParams) -> wire.Agent:
        current = await self.get_agent(workspace, agent_id)
        if current.archived_at is not None:
            raise Conflict(f"agent {agent_id!r} is archived and read-only", code="archived")
        if "version" in params.model_fields_set and params.version is not None and params.version != current.version:
            raise Conflict(
                f"agent {agent_id!r} is at version {current.version}, not {params.version}",
                code="version_conflict",
                current_version=current.version,
            )
        try:
            config = wire.apply_agent_update(current, params)
        except ValueError as exc:
            raise InvalidRequest(str(exc), code="invalid_agent") from exc
        if "multiagent" in params.model_fields_set:
            multiagent = None
            if params.multiagent is not None:
                multiagent = await resolve_multiagent(
                    self.store,
                    workspace,
                    params.multiagent,
                    stored=current.multiagent,
                    agent_id=agent_id,
                    version=current.version,
                )
            config = config.model_copy(update={"multiagent": multiagent})
        if config == current.config():
            return current  # a no-op update creates no version
        config = config.model_copy(update={"multiagent": repin(config.multiagent, agent_id, current.version + 1)})
        updated = current.with_config(config, version=current.version + 1, updated_at=now())
        await self.store.add_agent_version(
            AgentRow(
                workspace,
                agent_id,
                updated.version,
                rfc3339(current.created_at),
                None,
                updated.model_dump_json(by_alias=True),
            ),
            webhooks=[outbox_event("agent.updated", agent_id, workspace)],
        )
        self.writer.on_outbox()
        return updated

    async def list_agents(
        self,
        workspace: str,
        *,
        limit: int | None = None,
        page: str | None = None,
        include_archived: bool = False,
        created_at_gte: str | None = None,
        created_at_lte: str | None = None,
    ) -> wire.CursorPage[wire.Agent]:
        size = check_limit(limit, default=self.config.default_page_size, maximum=self.config.max_page_size)
        cursor = decode(page, descending=False)
        rows = await self.store.list_agents(
            workspace,
            ListQuery(
                limit=size + 1,
                after=keyset(cursor),
                include_archived=include_archived,
                created_gte=created_at_gte,
                created_lte=created_at_lte,
            ),
        )
        rows, next_page = cut_page(rows, size, descending=False)
        return wire.CursorPage[wire.Agent](data=[_agent(r) for r in rows], next_page=next_page)

    async def list_agent_versions(
        self, workspace: str, agent_id: str, *, limit: int | None = None, page: str | None = None
    ) -> wire.CursorPage[wire.Agent]:
        await self.get_agent(workspace, agent_id)
        size = check_limit(limit, default=self.config.default_page_size, maximum=self.config.max_page_size)
        cursor = decode(page, descending=True)
        rows = await self.store.list_agent_versions(workspace, agent_id, before_version=integer(cursor), limit=size + 1)
        more = len(rows) > size
        rows = rows[:size]
        next_page = encode(rows[-1].version, descending=True) if more else None
        return wire.CursorPage[wire.Agent](data=[_agent(r) for r in rows], next_page=next_page)

    async def archive_agent(self, workspace: str, agent_id: str) -> wire.Agent:
        agent = await self.get_agent(workspace, agent_id)
        if agent.archived_at is not None:
            raise Conflict(f"agent {agent_id!r} is already archived", code="archived")
        at = rfc3339(now())
        await self.store.archive_agent(
            workspace, agent_id, at, webhooks=[outbox_event("agent.archived", agent_id, workspace, at=at)]
        )
        self.writer.on_outbox()
        return await self.get_agent(workspace, agent_id)
