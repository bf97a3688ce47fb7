"""Sessions: creation from an agent snapshot, updates, archive, delete, pause and resume."""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any

from .. import wire
from . import _telemetry
from ._budgets import budget_paused, check_budget_update, check_budgetable, list_cost, resumed, session_spent
from ._clock import now, rfc3339
from ._core import RuntimeCore
from ._cursors import check_limit, decode, encode, keyset
from ._errors import Conflict, InvalidRequest, NotFound
from ._ids import new_id
from ._memory_mounts import memory_resources
from ._multiagent import session_multiagent
from ._outcomes import define_outcomes, resolve_rubrics
from ._resources import prepare_resources
from ._state import BudgetState, SessionInternal, start_next_turn
from ._writer import Change, LoadedSession, overlay
from .store import ListQuery, SessionRow, StoredEvent

ACTIVE_STATUSES = ("running", "rescheduling")


@dataclass(frozen=True, slots=True)
class SessionState:
    """The runtime's view of a session beyond the wire object: what it waits for and whether it is paused."""

    status: str
    paused: bool
    queued: int
    pending_event_ids: tuple[str, ...]
    archived: bool


class SessionsMixin(RuntimeCore):
    async def on_session_archived(self, session_id: str) -> None:
        """Called after a session was archived; the toolset kills the session's tool processes."""

    async def on_session_deleted(self, session_id: str) -> None:
        """Called after a session was deleted; the toolset kills its processes and removes its workspace."""

    async def _snapshot(self, workspace: str, ref: wire.SessionAgentRef) -> tuple[wire.SessionAgent, int]:
        """Resolve the three `agent` forms of spec §4.1 into the session's agent snapshot."""
        row = await self.store.get_agent(workspace, ref.id, ref.version)
        if row is None:
            raise NotFound(
                f"agent {ref.id!r}" + (f" version {ref.version}" if ref.version else "") + " not found",
                resource="agent",
            )
        if row.archived_at is not None:
            raise Conflict(f"agent {ref.id!r} is archived; new sessions cannot use it", code="archived")
        agent = wire.Agent.model_validate_json(row.body)
        snapshot = wire.SessionAgent.from_agent(agent)
        if isinstance(ref, wire.AgentWithOverridesParams):
            try:
                snapshot = wire.apply_agent_overrides(snapshot, ref)
            except ValueError as exc:
                raise InvalidRequest(str(exc), code="invalid_overrides") from exc
        if agent.multiagent is not None:
            roster = await session_multiagent(self.store, workspace, agent, snapshot)
            snapshot = snapshot.model_copy(update={"multiagent": roster})
        return snapshot, row.version

    async def start_session(self, workspace: str, params: wire.SessionCreateParams) -> wire.Session:
        snapshot, version = await self._snapshot(workspace, params.agent)
        if params.budget is not None:
            await check_budgetable(snapshot)
        env_row = await self.store.get_environment(workspace, params.environment_id)
        if env_row is None:
            raise NotFound(f"environment {params.environment_id!r} not found", resource="environment")
        if env_row.archived_at is not None:
            raise Conflict(f"environment {params.environment_id!r} is archived", code="archived")
        vault_ids: list[str] = []
        for vault_id in params.vault_ids or ():  # checked here, used when the session's MCP servers connect
            vault = await self.store.get_vault(workspace, vault_id)
            if vault is None:
                raise NotFound(f"vault {vault_id!r} not found", resource="vault")
            if vault.archived_at is not None:
                raise Conflict(f"vault {vault_id!r} is archived", code="archived")
            if vault_id not in vault_ids:
                vault_ids.append(vault_id)
        ts = now()
        session_id = new_id("sesn")
        attached = await prepare_resources(self.store, workspace, session_id, params.resources or [], ts)
        session = wire.Session.model_validate(
            {
                "id": session_id,
                "type": "session",
                "status": "idle",
                "title": params.title,
                "metadata": params.metadata or {},
                "environment_id": params.environment_id,
                "agent": snapshot.model_dump(mode="json", by_alias=True),
                "resources": [p.resource.model_dump(mode="json", by_alias=True) for p in attached],
                "vault_ids": vault_ids,
                "usage": {},
                "stats": {},
                "outcome_evaluations": [],
                "budget": params.budget.model_dump(mode="json") if params.budget else None,
                "created_at": rfc3339(ts),
                "updated_at": rfc3339(ts),
                "archived_at": None,
            }
        )
        config_type = json.loads(env_row.body).get("config", {}).get("type")
        internal = SessionInternal(self_hosted=config_type == "self_hosted")  # its tools run on workers
        if params.budget is not None:
            internal.budget = BudgetState()
        echoes = []
        initial_events = params.initial_events or []
        if any(e.type == "user.define_outcome" for e in initial_events):
            initial_events = await resolve_rubrics(self.store, workspace, initial_events)
        for param in initial_events:
            event = self.echo_event(param, processed_at=None)
            internal.queue.append(event.id)
            echoes.append(event)
        session = define_outcomes(session, internal, echoes) or session
        status: wire.SessionStatus = "idle"
        started = start_next_turn(internal)
        if started is not None:  # the first input starts a turn at once: the session is created running
            internal, status = started.internal, "running"
            internal.trace = _telemetry.hand_off(session_id)
            echoes = [e.model_copy(update={"processed_at": started.at}) if e.id in started.taken else e for e in echoes]
            echoes += started.events
        initial = [self.new_event(e) for e in echoes]
        row = SessionRow(
            workspace=workspace,
            id=session.id,
            agent_id=snapshot.id,
            agent_version=version,
            environment_id=params.environment_id,
            status=status,
            created_at=rfc3339(ts),
            archived_at=None,
            revision=1,
            last_seq=0,
            body=session.model_dump_json(by_alias=True),
            internal=internal.model_dump_json(),
            wants_worker=status == "running",
            updated_at=rfc3339(ts),
        )
        for prepared in attached:  # before the document that shows them (see _resources.py)
            await self.store.put_session_resource(prepared.row)
        memory_store_ids = [r.memory_store_id for r in memory_resources(session)]
        if memory_store_ids:  # for `list_sessions(memory_store_id=)`; an orphan row (crash) matches no session
            await self.store.memory.attach_memory_stores(workspace, session_id, memory_store_ids)
        await self.writer.insert(row, initial)
        return session.model_copy(update={"status": status})

    def echo_event(self, param: Any, *, processed_at: Any, **extra: Any) -> wire.SessionEvent:
        """The event a sent param becomes: same fields, plus a server id and `processed_at`."""
        data = param.model_dump(mode="json", by_alias=True, exclude_unset=True)
        data.update(type=param.type, id=self.event_id(), processed_at=processed_at, **extra)
        if param.type == "user.define_outcome":
            data.setdefault("outcome_id", new_id("outc"))
        return wire.parse_event(data)

    async def get_session(self, workspace: str, session_id: str) -> wire.Session:
        return await self.with_list_cost(await self.read_session(workspace, session_id))

    async def with_list_cost(self, loaded: LoadedSession) -> wire.Session:
        """The session with `usage.list_cost` (with its threads'), the same in retrieve, list and thread views;
        the list cost is tracked only under a budget."""
        session = loaded.session
        if loaded.internal.budget is not None:
            spent = await session_spent(self.writer, loaded)
            usage = session.usage.model_copy(update={"list_cost": list_cost(spent)})
            session = session.model_copy(update={"usage": usage})
        return session

    async def list_sessions(
        self,
        workspace: str,
        *,
        limit: int | None = None,
        page: str | None = None,
        order: str = "desc",
        include_archived: bool = False,
        agent_id: str | None = None,
        agent_version: int | None = None,
        statuses: list[str] | None = None,
        created_at_gt: str | None = None,
        created_at_gte: str | None = None,
        created_at_lt: str | None = None,
        created_at_lte: str | None = None,
        memory_store_id: str | None = None,
    ) -> wire.BidirectionalPage[wire.Session]:
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be 'asc' or 'desc'", code="invalid_order")
        descending = order == "desc"
        size = check_limit(limit, default=self.config.default_page_size, maximum=self.config.max_page_size)
        cursor = decode(page, descending=descending)
        backwards = bool(cursor and cursor.backwards)
        rows = await self.store.list_sessions(
            workspace,
            ListQuery(
                limit=size + 1,
                descending=descending != backwards,
                after=keyset(cursor),
                include_archived=include_archived,
                created_gt=created_at_gt,
                created_gte=created_at_gte,
                created_lt=created_at_lt,
                created_lte=created_at_lte,
                filters={
                    "agent_id": agent_id,
                    "agent_version": agent_version,
                    "statuses": statuses or None,
                    "memory_store_id": memory_store_id,
                },
            ),
        )
        more = len(rows) > size
        rows = rows[:size]
        if backwards:
            rows.reverse()
        has_next = more if not backwards else cursor is not None
        has_prev = (cursor is not None) if not backwards else more
        next_page = encode([rows[-1].created_at, rows[-1].id], descending=descending) if rows and has_next else None
        prev_page = (
            encode([rows[0].created_at, rows[0].id], descending=descending, backwards=True)
            if rows and has_prev
            else None
        )
        data = []
        for r in rows:
            session = overlay(wire.Session.model_validate_json(r.body), r)
            # a list item carries what a retrieve does: the list cost
            internal = SessionInternal.model_validate_json(r.internal)
            data.append(await self.with_list_cost(LoadedSession(r, session, internal)))
        return wire.BidirectionalPage[wire.Session](
            data=data,
            next_page=next_page,
            prev_page=prev_page,
        )

    async def update_session(self, workspace: str, session_id: str, params: wire.SessionUpdateParams) -> wire.Session:
        fields = params.model_fields_set
        if not fields:
            raise InvalidRequest("an update needs at least one field", code="empty_update")
        if "vault_ids" in fields:
            raise InvalidRequest("vault_ids can only be set when a session is created", code="vault_ids_immutable")
        async with self.writer.lock(session_id):
            loaded = await self.load_session(workspace, session_id)
            current = loaded.session
            if current.archived_at is not None:
                raise Conflict(f"session {session_id!r} is archived and read-only", code="archived")
            changes: dict[str, Any] = {}
            announce: dict[str, Any] = {}
            if "title" in fields and params.title != current.title:
                changes["title"] = announce["title"] = params.title
            if "metadata" in fields and params.metadata is not None:
                merged = dict(current.metadata)
                for key, value in params.metadata.items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                if merged != current.metadata:
                    changes["metadata"] = announce["metadata"] = merged
            if "agent" in fields and params.agent is not None:
                if current.status in ACTIVE_STATUSES:
                    raise Conflict("a running session's agent cannot change; interrupt it first", code="running")
                try:
                    agent = wire.apply_session_agent_update(current.agent, params.agent)
                except ValueError as exc:
                    raise InvalidRequest(str(exc), code="invalid_agent") from exc
                if agent != current.agent:
                    changes["agent"] = agent
                    announce["agent"] = agent.model_dump(mode="json", by_alias=True)
            if "budget" in fields:
                check_budget_update(current, params.budget, await session_spent(self.writer, loaded))
                if params.budget is not None:
                    await check_budgetable(current.agent)
                if params.budget != current.budget:
                    changes["budget"] = params.budget
                    announce["budget"] = params.budget.model_dump(mode="json") if params.budget else None
            if not changes:
                return current
            ts = now()
            updated = current.model_copy(update={**changes, "updated_at": ts})
            event = wire.parse_event(
                {"id": self.event_id(), "type": "session.updated", "processed_at": rfc3339(ts), **announce}
            )
            change = Change(document=updated, events=[event])
            if "budget" in changes:
                change = self._budget_changed(loaded.internal, params.budget, change)
            await self.commit(loaded, change)
        if "budget" in changes and loaded.internal.threads:
            await self._resume_threads(loaded)
        return updated.model_copy(update={"status": change.status}) if change.status else updated

    async def _resume_threads(self, loaded: LoadedSession) -> None:
        """Child threads paused at the coordinator's budget run on once it was raised or removed."""
        for child in loaded.internal.threads or []:
            with suppress(LookupError, NotFound):  # (deleted with its session meanwhile)
                await self.writer.apply(child.id, resumed)

    def _budget_changed(self, internal: SessionInternal, budget: wire.Budget | None, change: Change) -> Change:
        """A raised or removed budget resumes a session paused at it (it was checked to be above the spend)."""
        state = internal.budget
        if state is None:
            return change
        paused = budget_paused(internal)
        internal = internal.model_copy(
            update={"budget": state.model_copy(update={"paused": False}) if budget is not None else None}
        )
        if not paused:
            return replace(change, internal=internal)
        running = wire.parse_event({"id": self.event_id(), "type": "session.status_running", "processed_at": now()})
        return replace(change, internal=internal, status="running", events=[*change.events, running])

    async def archive_session(self, workspace: str, session_id: str) -> wire.Session:
        async with self.writer.lock(session_id):
            loaded = await self.load_session(workspace, session_id)
            current = loaded.session
            if current.archived_at is not None:
                raise Conflict(f"session {session_id!r} is already archived", code="archived")
            if current.status in ACTIVE_STATUSES:
                raise Conflict(f"session {session_id!r} is running; interrupt it first", code="running")
            ts = now()
            updated = current.model_copy(update={"archived_at": ts, "updated_at": ts, "status": "terminated"})
            events = []
            if current.status != "terminated":
                events.append(
                    wire.parse_event(
                        {"id": self.event_id(), "type": "session.status_terminated", "processed_at": rfc3339(ts)}
                    )
                )
            await self.commit(
                loaded, Change(document=updated, status="terminated", events=events, archived_at=rfc3339(ts))
            )
        await self.on_session_archived(session_id)
        if loaded.internal.threads:
            await self._end_threads(workspace, loaded.internal, delete=False)
        return updated

    async def _end_threads(self, workspace: str, internal: SessionInternal, *, delete: bool) -> None:
        """A coordinator's child threads (hidden sessions, `_threads.py`) follow it when it is archived or deleted."""
        from ._threads import thread_workspace

        for child in internal.threads or []:
            try:
                if delete:
                    await self.delete_session(thread_workspace(workspace), child.id)
                else:
                    await self.archive_session(thread_workspace(workspace), child.id)
            except (Conflict, NotFound):
                pass  # archived already (a thread can be archived on its own), or gone

    async def delete_session(self, workspace: str, session_id: str) -> wire.Deleted:
        async with self.writer.lock(session_id):
            loaded = await self.load_session(workspace, session_id)
            if loaded.status in ACTIVE_STATUSES:
                raise Conflict(f"session {session_id!r} is running; interrupt it first", code="running")
            # a worker still driving it exits at its next commit
            if not await self.writer.delete(workspace, session_id):
                raise NotFound(f"session {session_id!r} not found", resource="session")
            ts = rfc3339(now())
            event_id = self.event_id()
            body = wire.parse_event({"id": event_id, "type": "session.deleted", "processed_at": ts})
            final = StoredEvent(
                session_id, loaded.row.last_seq + 1, event_id, "session.deleted", ts, body.model_dump_json()
            )
            self.bus.close_session(session_id, final)
        self.locks.discard(session_id)
        await self.on_session_deleted(session_id)
        if loaded.internal.threads:
            await self._end_threads(workspace, loaded.internal, delete=True)
        return wire.Deleted(id=session_id, type="session_deleted")

    async def pause(self, workspace: str, session_id: str) -> SessionState:
        """Stop taking input at the next turn boundary; persisted, so it survives a restart."""
        return await self._set_paused(workspace, session_id, True)

    async def resume(self, workspace: str, session_id: str) -> SessionState:
        return await self._set_paused(workspace, session_id, False)

    async def _set_paused(self, workspace: str, session_id: str, paused: bool) -> SessionState:
        async with self.writer.lock(session_id):
            loaded = await self.load_session(workspace, session_id)
            if loaded.row.archived_at is not None or loaded.status == "terminated":
                raise Conflict(f"session {session_id!r} is {_finished(loaded.session)}", code="terminated")
            if loaded.internal.paused != paused:
                internal = loaded.internal.model_copy(update={"paused": paused})
                change = Change(internal=internal)
                started = start_next_turn(internal) if loaded.status == "idle" else None
                if started is not None:  # resuming an idle session with queued input starts its next turn
                    change = Change(
                        internal=started.internal,
                        status="running",
                        events=started.events,
                        processed=started.taken,
                        processed_at=started.at,
                    )
                await self.commit(loaded, change)
        return await self.status(workspace, session_id)

    async def status(self, workspace: str, session_id: str) -> SessionState:
        loaded = await self.read_session(workspace, session_id)
        return SessionState(
            status=loaded.status,
            paused=loaded.internal.paused,
            queued=len(loaded.internal.queue),
            pending_event_ids=tuple(k for k, v in loaded.internal.pending.items() if v.answer is None),
            archived=loaded.row.archived_at is not None,
        )


def _finished(session: wire.Session) -> str:
    return "archived" if session.archived_at is not None else "terminated"
