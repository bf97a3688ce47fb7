"""Events in and out of a session: send (validated all-or-nothing, idempotent), list, and stream with replay."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from .. import wire
from . import _telemetry
from ._budgets import budget_paused
from ._bus import StreamItem
from ._clock import now
from ._cursors import check_limit, decode, encode, integer
from ._errors import Conflict, CursorOutOfRange, InvalidRequest, NotFound
from ._outcomes import define_outcomes, resolve_rubrics
from ._sessions import SessionsMixin
from ._state import PendingAction, SessionInternal, start_next_turn
from ._stream import LogStream, open_log_stream
from ._threads import forward_to_threads, primary_thread_id
from ._writer import INPUT_TYPES, Change, LoadedSession
from .store import EventQuery, IdempotencyRecord, NewEvent, StoredEvent

QUEUED_TYPES = INPUT_TYPES


@dataclass(frozen=True, slots=True)
class EventPage:
    """A page of the log as stored: `data[i].body` is the event's wire JSON, served as it is."""

    data: list[StoredEvent]
    next_page: str | None


class EventsMixin(SessionsMixin):
    async def send_events(
        self,
        workspace: str,
        session_id: str,
        events: Sequence[wire.EventParams],
        *,
        idempotency_key: str | None = None,
    ) -> list[wire.SessionEvent]:
        """Accept client events. Every event is validated before anything is written; the echo carries the id the
        event has in list and stream. A repeated `idempotency_key` returns the first answer and writes nothing."""
        if not events:
            raise InvalidRequest("events must hold at least one event", code="empty_events")
        if idempotency_key is None:
            return await self._send_events(workspace, session_id, events, None)
        await self.read_session(workspace, session_id)  # the key is scoped to a session the caller can see
        try:
            return await self._send_events(workspace, session_id, events, idempotency_key)
        except (InvalidRequest, Conflict):
            # A retry of a request that was applied fails validation now (its tool results are answered, ...):
            # look the key up only then, so the first send of every request pays no extra read.
            cached = await self.store.get_idempotency(session_id, idempotency_key)
            if cached is not None:
                return [wire.parse_event(e) for e in json.loads(cached)]
            raise

    async def _send_events(
        self,
        workspace: str,
        session_id: str,
        events: Sequence[wire.EventParams],
        idempotency_key: str | None,
    ) -> list[wire.SessionEvent]:
        _check_system_messages(events)
        outcome = any(e.type == "user.define_outcome" for e in events)
        if outcome:  # a file rubric is read once, now (`_outcomes.py`)
            events = await resolve_rubrics(self.store, workspace, events)
        async with self.writer.lock(session_id):
            loaded = await self.load_session(workspace, session_id)
            status_before = loaded.status
            if loaded.row.archived_at is not None:
                raise Conflict(f"session {session_id!r} is archived; it accepts no events", code="archived")
            if loaded.status == "terminated":
                raise Conflict(f"session {session_id!r} is terminated; it accepts no events", code="terminated")
            if loaded.internal.budget is not None and budget_paused(loaded.internal):
                _check_settle_only(events)
            before = loaded.internal
            internal = before.model_copy(
                update={
                    "queue": list(before.queue),
                    "attached": dict(before.attached),
                    "pending": {k: v.model_copy() for k, v in before.pending.items()},
                    "turn": before.turn.model_copy() if before.turn is not None else None,
                }
            )
            self_hosted = loaded.internal.self_hosted or (
                any(e.type == "user.tool_result" for e in events) and await self._self_hosted(loaded)
            )
            was_open = _open_ids(internal)
            echoes: list[wire.SessionEvent] = []
            for param in events:
                previous = echoes[-1] if echoes else None
                echoes.append(self._accept(loaded, internal, param, self_hosted=self_hosted, previous=previous))
            document = define_outcomes(loaded.session, internal, echoes) if outcome else None
            status: wire.SessionStatus | None = None
            taken: list[str] = []
            announce: list[wire.SessionEvent] = []
            still_open = _open_ids(internal)
            if was_open and not still_open and internal.pending and not internal.interrupt_requested:
                # every pending tool use is answered: the turn goes on (the worker resumes it)
                status = "running"
                announce.append(_status_running(self.event_id()))
            elif loaded.status == "idle" and (started := start_next_turn(internal)) is not None:
                # input that will be processed moves the session to running in the same commit
                internal, taken = started.internal, started.taken
                status = "running"
                echoes = [e.model_copy(update={"processed_at": started.at}) if e.id in taken else e for e in echoes]
                announce += started.events
            elif still_open and still_open != was_open and not internal.interrupt_requested:
                # a partial answer: the session stays blocked on the rest, and says which
                announce.append(
                    wire.parse_event(
                        {
                            "id": self.event_id(),
                            "type": "session.status_idle",
                            "processed_at": wire.utcnow(),
                            "stop_reason": {"type": "requires_action", "event_ids": still_open},
                            "stop_details": None,
                        }
                    )
                )
            if status == "running":  # this request's trace parents the turn it runs, and is linked by later runs
                internal.trace = _telemetry.hand_off(session_id) or internal.trace
            stored_events: list[NewEvent] = [self.new_event(e) for e in [*echoes, *announce]]
            idempotency = None
            if idempotency_key is not None:
                response = json.dumps([json.loads(e.body) for e in stored_events[: len(echoes)]])
                idempotency = IdempotencyRecord(idempotency_key, response)
            try:
                await self.commit(
                    loaded,
                    Change(
                        events=stored_events,
                        status=status,
                        internal=internal,
                        idempotency=idempotency,
                        document=document,
                    ),
                )
            except Conflict as exc:
                if exc.code != "idempotent_replay" or idempotency_key is None:
                    raise
                cached = await self.store.get_idempotency(session_id, idempotency_key)
                assert cached is not None
                return [wire.parse_event(e) for e in json.loads(cached)]
        await self.writer.status_changed(status_before, loaded)  # (a thread an answer resumes: its coordinator hears)
        if internal.threads:  # a coordinator: answers of cross-posted calls and interrupts go to the threads
            await forward_to_threads(self, workspace, loaded.id, internal, events, echoes)
        return echoes

    def _accept(
        self,
        loaded: LoadedSession,
        internal: SessionInternal,
        param: Any,
        *,
        self_hosted: bool,
        previous: wire.SessionEvent | None,
    ) -> wire.SessionEvent:
        """Validate one sent event against the session's state and record its effect on `internal`."""
        ts = now()
        kind = param.type
        if kind == "system.message":  # validated to follow the event it accompanies
            if previous is not None and previous.type in QUEUED_TYPES:
                event = self.echo_event(param, processed_at=None)  # processed with its input
                internal.attached[previous.id] = event.id
                return event
            event = self.echo_event(param, processed_at=ts)  # behind a tool result: joins the turn in progress
            if internal.turn is not None:
                internal.turn.system_id = event.id
            return event
        if kind in QUEUED_TYPES:
            # `processed_at` stays null while the input is queued (spec §5.1); the input taken right away is
            # marked processed in the same commit
            event = self.echo_event(param, processed_at=None)
            internal.queue.append(event.id)
            return event
        if kind == "user.interrupt":
            thread = param.session_thread_id
            if thread is not None and thread != primary_thread_id(loaded.id):  # one child thread (forwarded)
                if not any(t.id == thread for t in internal.threads or []):
                    raise NotFound(f"thread {thread!r} not found in session {loaded.id!r}", resource="thread")
                return self.echo_event(param, processed_at=ts)
            busy = loaded.status != "idle" or bool(internal.pending) or budget_paused(internal)
            internal.interrupt_requested = internal.interrupt_requested or busy
            return self.echo_event(param, processed_at=ts)
        if kind == "user.tool_result" and not self_hosted:
            raise InvalidRequest(
                "user.tool_result is only accepted by sessions in a self_hosted environment",
                code="tool_result_not_self_hosted",
            )
        target_field = {
            "user.custom_tool_result": "custom_tool_use_id",
            "user.tool_confirmation": "tool_use_id",
            "user.tool_result": "tool_use_id",
        }.get(kind)
        if target_field is None:
            raise InvalidRequest(f"unsupported event type {kind!r}", code="unknown_event_type")
        target = getattr(param, target_field)
        expected_kind = {"user.custom_tool_result": "custom", "user.tool_confirmation": "confirmation"}.get(
            kind, "tool_result"
        )
        pending = internal.pending.get(target)
        open_ids = sorted(k for k, v in internal.pending.items() if v.answer is None)
        if pending is not None and pending.kind == "tool_result" and pending.asks:
            if kind == "user.tool_confirmation":
                return self._confirm_worker_call(pending, param, open_ids)
            if pending.confirmation is None:
                raise InvalidRequest(
                    f"tool_use_id {target!r} waits for a user.tool_confirmation before a worker may run it",
                    code="awaiting_confirmation",
                    pending_event_ids=open_ids,
                )
        if pending is None or pending.kind != expected_kind:
            raise InvalidRequest(
                f"{target_field} {target!r} does not match a pending "
                f"{'custom tool use' if expected_kind == 'custom' else 'tool use'}; "
                f"pending: {open_ids or 'none'}",
                code="unknown_tool_use_id",
                pending_event_ids=open_ids,
            )
        if getattr(param, "session_thread_id", None) is not None:  # older clients send it: routed by id instead
            param = type(param).model_validate(param.model_dump(exclude={"session_thread_id"}, exclude_unset=True))
        routed = {"session_thread_id": pending.thread} if pending.thread_event is not None else {}
        answer = param.model_dump(mode="json", by_alias=True, exclude_unset=True)
        answer.pop("type", None)
        if pending.answer is not None:
            if pending.answer == answer:  # the same answer again (a retry): applied once
                return self.echo_event(param, processed_at=ts, **routed)
            raise InvalidRequest(
                f"{target_field} {target!r} was already answered; pending: {open_ids or 'none'}",
                code="already_answered",
                pending_event_ids=open_ids,
            )
        event = self.echo_event(param, processed_at=ts, **routed)
        pending.answer = answer
        pending.answer_event = event.id
        return event

    def _confirm_worker_call(self, pending: PendingAction, param: Any, open_ids: list[str]) -> wire.SessionEvent:
        """A confirmation of a worker's call that asks: `allow` lets the worker run it (the call stays open for its
        `user.tool_result`), `deny` answers it (the worker posts nothing). The same confirmation twice applies once."""
        verdict = param.model_dump(mode="json", by_alias=True, exclude_unset=True)
        verdict.pop("type", None)
        if pending.confirmation is not None:
            if pending.confirmation == verdict:
                return self.echo_event(param, processed_at=now())
            raise InvalidRequest(
                f"tool_use_id {param.tool_use_id!r} was already confirmed; pending: {open_ids or 'none'}",
                code="already_answered",
                pending_event_ids=open_ids,
            )
        event = self.echo_event(param, processed_at=now())
        pending.confirmation = verdict
        if verdict.get("result") != "allow":
            pending.answer, pending.answer_event = verdict, event.id
        return event

    async def _self_hosted(self, loaded: LoadedSession) -> bool:
        env = await self.store.get_environment(loaded.row.workspace, loaded.row.environment_id)
        return env is not None and json.loads(env.body).get("config", {}).get("type") == "self_hosted"

    async def interrupt(self, workspace: str, session_id: str) -> wire.SessionEvent:
        (echo,) = await self.send_events(workspace, session_id, [wire.UserInterruptParams(type="user.interrupt")])
        return echo

    async def list_events(
        self,
        workspace: str,
        session_id: str,
        *,
        types: Sequence[str] | None = None,
        order: str = "asc",
        limit: int | None = None,
        page: str | None = None,
        created_at_gt: str | None = None,
        created_at_gte: str | None = None,
        created_at_lt: str | None = None,
        created_at_lte: str | None = None,
    ) -> EventPage:
        """The log in persisted order (`created_at[...]` filters compare `processed_at`)."""
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be 'asc' or 'desc'", code="invalid_order")
        await self.read_session(workspace, session_id)
        descending = order == "desc"
        size = check_limit(limit, default=self.config.event_page_size, maximum=self.config.event_page_size)
        cursor = decode(page, descending=descending)
        position = integer(cursor)
        rows = await self.store.list_events(
            session_id,
            EventQuery(
                after_seq=position if (position is not None and not descending) else 0,
                before_seq=position if descending else None,
                types=tuple(types or ()),
                descending=descending,
                limit=size + 1,
                processed_gt=created_at_gt,
                processed_gte=created_at_gte,
                processed_lt=created_at_lt,
                processed_lte=created_at_lte,
            ),
        )
        more = len(rows) > size
        rows = rows[:size]
        return EventPage(rows, encode(rows[-1].seq, descending=descending) if more else None)

    async def open_stream(
        self,
        workspace: str,
        session_id: str,
        *,
        after_seq: int | None = None,
        after_id: str | None = None,
        previews: bool = False,
    ) -> LogStream:
        """Open a stream now: the session and the cursor are checked and the start point fixed before this returns
        (a server answers 404/400 before any stream bytes, and nothing committed after the call can be missed).

        With neither cursor the stream starts at the end of the log (live only, as the Claude wire does);
        `after_seq=0` replays from the beginning; `after_id` resumes after that event (SSE Last-Event-ID).
        With `previews`, live `Preview`s of agent messages (`event_start`, `event_delta`) are interleaved.
        The caller owns the stream: iterate it, then `aclose()` it.
        """
        await self.read_session(workspace, session_id)  # NotFound for another workspace's id
        if after_id is not None:
            found = await self.store.get_event(session_id, after_id)
            if found is None:
                raise CursorOutOfRange(
                    f"event {after_id!r} is not in session {session_id!r}'s log; cannot resume after it",
                    code="unknown_event_id",
                )
            after_seq = found.seq

        async def finished() -> bool:
            try:
                loaded = await self.read_session(workspace, session_id)
            except NotFound:
                return True
            return loaded.status == "terminated"

        async def end() -> int | None:
            # exact: every commit settles its row (under the session's lock) before a reader sees it
            try:
                return (await self.read_session(workspace, session_id)).row.last_seq
            except NotFound:
                return None

        return await open_log_stream(
            self.store, self.bus, session_id, after_seq, is_finished=finished, previews=previews, end=end
        )

    async def stream_events(
        self,
        workspace: str,
        session_id: str,
        *,
        after_seq: int | None = None,
        after_id: str | None = None,
        previews: bool = False,
    ) -> AsyncIterator[StreamItem]:
        """`open_stream` as an async generator: every event after the cursor exactly once, in order, then live;
        ends after a terminal event. (The checks run when iteration starts; use `open_stream` to run them now.)"""
        stream = await self.open_stream(
            workspace, session_id, after_seq=after_seq, after_id=after_id, previews=previews
        )
        try:
            async for item in stream:
                yield item
        finally:
            await stream.aclose()


def _status_running(event_id: str) -> wire.SessionEvent:
    return wire.parse_event({"id": event_id, "type": "session.status_running", "processed_at": wire.utcnow()})


def _open_ids(internal: SessionInternal) -> list[str]:
    """Pending tool-use event ids not answered yet, in the order they were announced (a coordinator's
    delegations wait on their threads, not on the client: not counted)."""
    return [k for k, pending in internal.pending.items() if pending.answer is None and pending.kind != "thread"]


def _check_settle_only(events: Sequence[Any]) -> None:
    refused = sorted({e.type for e in events if e.type not in wire.SETTLE_EVENT_TYPES})
    if refused:
        raise InvalidRequest(
            f"the session is paused at its budget and accepts only tool answers and interrupts, not {refused}; "
            "raise or remove the budget to go on",
            code="budget_reached",
        )


def _check_system_messages(events: Sequence[Any]) -> None:
    """Spec §5.2: at most one system.message, last, right after the user event it accompanies."""
    kinds = [e.type for e in events]
    if kinds.count("system.message") > 1:
        raise InvalidRequest("at most one system.message per request", code="too_many_system_messages")
    if "system.message" in kinds:
        index = kinds.index("system.message")
        if (
            index != len(kinds) - 1
            or index == 0
            or kinds[index - 1]
            not in (
                "user.message",
                "user.tool_result",
                "user.custom_tool_result",
            )
        ):
            raise InvalidRequest(
                "a system.message must be the last event and directly follow a user.message, user.tool_result "
                "or user.custom_tool_result",
                code="misplaced_system_message",
            )
