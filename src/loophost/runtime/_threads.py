"""Threads of a session (spec-2 §3.2): the primary thread (the session itself) and a coordinator's child threads.

A child thread is a hidden session (`engine/_threads.py`) in the workspace `thread_workspace(ws)`, whose id is the
thread id; its events, stream and usage are that session's. This module maps thread ids to where they live, lists
and archives threads, and keeps the ids' rules in one light place (no pydantic-ai import).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .. import wire
from ._budgets import budget_paused, list_cost
from ._errors import Conflict, InvalidRequest, NotFound
from ._ids import new_id
from ._sessions import SessionsMixin
from ._state import ChildThread, SessionInternal
from ._writer import Change, LoadedSession, SessionWriter, current_fence, overlay

log = logging.getLogger("loophost.runtime")


ADVISOR_AGENT_ID = "advisor"
"""The advisor's id and name on a roster (`engine/_threads.py`); its thread shows `{type:"advisor", model}`. Real
agent ids start with `agent_`, so it names no stored agent."""

INLINE_AGENT_PREFIX = "inline:"
"""An inline agent's id on its thread is this prefix and its name (`engine/_threads.py`): it has no stored agent,
and no real agent id has a colon. Its thread shows `{type:"inline", name, ...}`."""


def inline_agent_id(name: str) -> str:
    return INLINE_AGENT_PREFIX + name


def thread_workspace(workspace: str) -> str:
    """Where a workspace's child threads live: apart, so they are never listed or addressed as sessions."""
    return f"{workspace}/threads"


def primary_thread_id(session_id: str) -> str:
    """The primary thread's id mirrors the session's."""
    return "sthr_" + session_id.removeprefix("sesn_")


class ThreadsMixin(SessionsMixin):
    async def list_threads(
        self, workspace: str, session_id: str, statuses: list[str] | None = None
    ) -> list[wire.SessionThread]:
        """The primary thread, then the children in creation order; `statuses` filters."""
        loaded = await self.read_session(workspace, session_id)
        threads = [_primary(loaded.session, loaded.internal)]
        for child in loaded.internal.threads or []:
            thread = await self._child(workspace, loaded.session, child)
            if thread is not None:
                threads.append(thread)
        return [t for t in threads if not statuses or t.status in statuses]

    async def get_thread(self, workspace: str, session_id: str, thread_id: str) -> wire.SessionThread:
        loaded = await self.read_session(workspace, session_id)
        if thread_id == primary_thread_id(session_id):
            return _primary(loaded.session, loaded.internal)
        child = _known(loaded, thread_id)
        thread = await self._child(workspace, loaded.session, child)
        if thread is None:
            raise NotFound(f"thread {thread_id!r} not found in session {session_id!r}", resource="thread")
        return thread

    async def thread_target(self, workspace: str, session_id: str, thread_id: str) -> tuple[str, str]:
        """(workspace, session id) holding a thread's events: the session for its primary thread, else the
        thread's hidden session. 404 for a thread the session does not have."""
        loaded = await self.read_session(workspace, session_id)
        if thread_id == primary_thread_id(session_id):
            return workspace, session_id
        _known(loaded, thread_id)
        return thread_workspace(workspace), thread_id

    async def archive_thread(self, workspace: str, session_id: str, thread_id: str) -> wire.SessionThread:
        """Only an idle child thread; twice is a no-op. Emits `session.thread_status_terminated` on the session."""
        loaded = await self.read_session(workspace, session_id)
        if thread_id == primary_thread_id(session_id):
            raise InvalidRequest(
                "the primary thread cannot be archived; archive the session instead", code="primary_thread"
            )
        child = _known(loaded, thread_id)
        where = thread_workspace(workspace)
        row = await self.store.get_session(where, thread_id)
        if row is None:
            raise NotFound(f"thread {thread_id!r} not found in session {session_id!r}", resource="thread")
        if row.archived_at is None:
            if row.status in ("running", "rescheduling"):
                raise InvalidRequest(f"thread {thread_id!r} is {row.status}; only an idle thread can be archived")
            await self.archive_session(where, thread_id)
            event = wire.parse_event(
                {
                    "id": self.event_id(),
                    "type": "session.thread_status_terminated",
                    "processed_at": wire.utcnow(),
                    "session_thread_id": thread_id,
                    "agent_name": child.name,
                }
            )
            await self.writer.apply(session_id, lambda current: Change(events=[event]))
        return await self.get_thread(workspace, session_id, thread_id)

    async def _child(self, workspace: str, session: wire.Session, child: ChildThread) -> wire.SessionThread | None:
        row = await self.store.get_session(thread_workspace(workspace), child.id)
        if row is None:
            return None
        document = overlay(wire.Session.model_validate_json(row.body), row)
        return wire.SessionThread(
            id=child.id,
            session_id=session.id,
            agent=_thread_agent(child, document.agent),
            parent_thread_id=primary_thread_id(session.id),
            status=document.status,
            created_at=document.created_at,
            updated_at=document.updated_at,
            archived_at=datetime.fromisoformat(row.archived_at) if row.archived_at else None,
            stats=wire.SessionThreadStats.model_validate(document.stats.model_dump()),
            usage=_own_cost(document.usage, SessionInternal.model_validate_json(row.internal)),
        )


def _thread_agent(
    child: ChildThread, agent: wire.SessionAgent
) -> wire.SessionThreadAgent | wire.AdvisorThreadAgent | wire.InlineThreadAgent:
    """The thread's `agent` snapshot: the roster agent it runs, the advisor as the SDK shows it (its fixed
    instructions are loophost's, not part of the wire shape), or an inline agent (no id or version)."""
    if child.agent_id == ADVISOR_AGENT_ID:
        return wire.AdvisorThreadAgent(model=agent.model.id)
    if child.agent_id.startswith(INLINE_AGENT_PREFIX):
        fields = {name: getattr(agent, name) for name in wire.InlineThreadAgent.model_fields if name != "type"}
        return wire.InlineThreadAgent.model_validate(fields).model_copy(deep=True)
    return wire.SessionThreadAgent.from_agent(agent)


def _known(loaded: LoadedSession, thread_id: str) -> ChildThread:
    for child in loaded.internal.threads or []:
        if child.id == thread_id:
            return child
    raise NotFound(f"thread {thread_id!r} not found in session {loaded.id!r}", resource="thread")


def _own_cost(usage: wire.SessionUsage, internal: SessionInternal) -> wire.SessionUsage:
    """A thread's usage with its own list cost (tracked only under a budget; the session's figure adds its
    threads')."""
    if internal.budget is None:
        return usage
    return usage.model_copy(update={"list_cost": list_cost(internal.budget.spent)})


def _primary(session: wire.Session, internal: SessionInternal) -> wire.SessionThread:
    """The primary thread mirrors the session: same agent, status, usage (its own list cost) and timestamps."""
    return wire.SessionThread(
        id=primary_thread_id(session.id),
        session_id=session.id,
        agent=wire.SessionThreadAgent.from_agent(session.agent),
        parent_thread_id=None,
        status=session.status,
        created_at=session.created_at,
        updated_at=session.updated_at,
        archived_at=session.archived_at,
        stats=wire.SessionThreadStats.model_validate(session.stats.model_dump()),
        usage=_own_cost(session.usage, internal),
    )


async def forward_to_threads(
    rt: Any, workspace: str, session_id: str, internal: SessionInternal, params: Sequence[Any], echoes: Sequence[Any]
) -> None:
    """After a coordinator accepted `params`: answers of cross-posted calls go to the thread that made the call
    (its original tool-use id), and interrupts to one thread (`session_thread_id`) or to all of them."""
    where = thread_workspace(workspace)
    for param in params:
        if param.type == "user.interrupt":
            one = param.session_thread_id
            targets = [one] if one and one != primary_thread_id(session_id) else [t.id for t in internal.threads or []]
            for thread_id in targets:
                await _send(rt, where, thread_id, wire.UserInterruptParams(type="user.interrupt"))
            continue
        field = _ANSWER_FIELDS.get(param.type)
        if field is None:
            continue
        pending = internal.pending.get(getattr(param, field))
        if pending is None or pending.thread is None or pending.thread_event is None:
            continue
        data = param.model_dump(exclude_unset=True, exclude={"session_thread_id"})
        data[field] = pending.thread_event
        await _send(rt, where, pending.thread, type(param).model_validate(data))


async def mirror_status(writer: SessionWriter, before: str, child: LoadedSession) -> None:
    """A child thread's status change, as its coordinator's stream shows it (spec-2 §3.2: the primary stream is a
    condensed view of its children: their status events). The changes posted elsewhere are not mirrored here:
    a delegation posts `running` with its message (`engine/_threads.py`), the end of a turn posts `idle` with the
    answer (`notify_parent`), an archive posts `terminated` (`archive_thread`). What is left: `rescheduled` and the
    `running` after it, `running` again once the client answered a cross-posted call or a raised budget resumed
    the thread, `idle` with `budget_reached`, and `terminated` when a thread's turn failed for good.

    Posted once the child's commit is done, outside its lock (the coordinator's lock is never taken inside a
    thread's); a crash in between loses this view's event, never the thread's own."""
    link = child.internal.parent
    if link is None or child.row.archived_at is not None:
        return
    after = child.status
    fields: dict[str, Any] = {}
    if after == "rescheduling":
        kind = "session.thread_status_rescheduled"
    elif after == "running":
        kind = "session.thread_status_running"
    elif after == "terminated":
        kind = "session.thread_status_terminated"
    elif after == "idle" and budget_paused(child.internal):
        kind, fields = "session.thread_status_idle", {"stop_reason": {"type": "budget_reached"}}
    else:
        return
    event = wire.parse_event(
        {
            "id": new_id("sevt"),
            "type": kind,
            "processed_at": wire.utcnow(),
            "session_thread_id": child.id,
            "agent_name": link.agent_name,
            **fields,
        }
    )

    def post(parent: LoadedSession) -> Change:
        if parent.row.archived_at is not None or not any(t.id == child.id for t in parent.internal.threads or []):
            return Change()
        return Change(events=[event])

    token = current_fence.set(None)  # (the coordinator's write, from the thread's worker: not its lease's)
    try:
        await writer.apply(link.session_id, post)
    except (LookupError, NotFound):
        pass  # its coordinator was deleted
    finally:
        current_fence.reset(token)


_ANSWER_FIELDS = {"user.custom_tool_result": "custom_tool_use_id", "user.tool_confirmation": "tool_use_id"}
_ANSWER_PARAMS: dict[str, tuple[str, type[wire.ParamsModel]]] = {
    "custom": ("custom_tool_use_id", wire.UserCustomToolResultParams),
    "confirmation": ("tool_use_id", wire.UserToolConfirmationParams),
}


async def forward_recorded_answers(rt: Any, loaded: LoadedSession) -> None:
    """Answers of cross-posted calls that a coordinator recorded but its thread does not have yet: a process that
    died between the client's send (its commit) and the forward left them there. Called when the coordinator's
    worker settles (it is running once every copy is answered, so recovery drives it here); forwarding twice is
    harmless (the same answer again is applied once)."""
    where = thread_workspace(loaded.row.workspace)
    for action in loaded.internal.pending.values():
        shape = _ANSWER_PARAMS.get(action.kind)
        if shape is None or action.answer is None or action.thread is None or action.thread_event is None:
            continue
        try:
            thread = await rt.writer.load(where, action.thread)
        except (LookupError, NotFound):
            continue
        waiting = thread.internal.pending.get(action.thread_event)
        if waiting is None or waiting.answer is not None:
            continue
        field, params = shape
        data = {k: v for k, v in action.answer.items() if k != "session_thread_id"}
        data[field] = action.thread_event
        await _send(rt, where, action.thread, params.model_validate(data))


async def _send(rt: Any, workspace: str, thread_id: str, param: Any) -> None:
    try:
        await rt.send_events(workspace, thread_id, [param])
    except (InvalidRequest, Conflict, NotFound) as exc:  # the thread moved on (interrupted, archived)
        log.info("could not forward %s to thread %s: %s", param.type, thread_id, exc)
