"""How a turn ends other than by its model finishing: cut off by an interrupt, retried after a transient model
error, ended by an error, or terminated. Each is one commit: what the turn left open (a span, calls without a
result) is closed in the same change that settles the session's status."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .._state import TurnState
from .._writer import Change, LoadedSession, SessionWriter
from ..store import Store
from . import _outbound as out
from ._config import AgentLoopConfig

if TYPE_CHECKING:
    from ._history import History


async def interrupt(writer: SessionWriter, store: Store, session_id: str, history: History) -> None:
    """Close what the interrupted turn left open (calls get their recorded result or an error), then idle."""
    from .._budgets import budget_paused
    from ._calls import answer_text
    from ._grader import interrupted as interrupted_outcome
    from ._history import Result, closing_request, read_results
    from ._turn import turn_end

    loaded = await writer.load(None, session_id)
    turn = loaded.internal.turn or TurnState()
    done = {k: v.result_event for k, v in turn.ledger.items() if v.result_event is not None}
    recorded = await read_results(store, session_id, list(done.values()))
    results = {k: recorded[e] for k, e in done.items() if e in recorded}
    for pending in loaded.internal.pending.values():
        answer = pending.answer
        if pending.kind in ("custom", "tool_result") and answer is not None and "result" not in answer:
            is_error = bool(answer.get("is_error"))
            results[pending.tool_use_id] = Result(answer_text(answer), is_error, pending.answer_event)

    def change(current: LoadedSession) -> Change:
        internal = current.internal
        state = internal.turn or TurnState()
        events: list[Any] = []
        if state.open_span is not None:
            events.append(out.span_end(state.open_span))
        document = None
        if internal.outcome is not None:  # a started outcome ends `interrupted` (its span closes too)
            ended, internal, document = interrupted_outcome(current)
            events += ended
        if current.status != "idle" or internal.pending or budget_paused(internal):
            events.append(out.idle(_END))  # (a turn paused at the budget is dropped too)
        closing = closing_request(history.messages, results)
        cleared = internal.model_copy(update={"pending": {}, "turn": None, "interrupt_requested": False})
        written = history.append(closing) if closing is not None else None
        return turn_end(cleared, events, history=written, document=document)

    await writer.apply(session_id, change)


async def reschedule(writer: SessionWriter, config: AgentLoopConfig, session_id: str, exc: Exception) -> None:
    """A transient model error: the turn waits (backoff) and retries, or ends once retries are exhausted."""
    from ..models import model_error_type

    kind = model_error_type(exc)
    loaded = await writer.load(None, session_id)
    attempts = (loaded.internal.turn or TurnState()).attempts + 1
    if attempts > config.max_retries:
        await end_with_error(writer, session_id, kind, str(exc), stop="retries_exhausted")
        return

    def change(current: LoadedSession) -> Change:
        state = current.internal.turn or TurnState()
        events: list[Any] = []
        if state.open_span is not None:
            events.append(out.span_end(state.open_span, is_error=True))
        events += [out.error(kind, str(exc), "retrying"), out.rescheduled()]
        internal = current.internal.model_copy(
            update={"turn": state.model_copy(update={"attempts": attempts, "open_span": None})}
        )
        return Change(events=events, status="rescheduling", internal=internal)

    await writer.apply(session_id, change)
    delay = min(config.retry_backoff * 2 ** (attempts - 1), config.retry_backoff_max)
    await asyncio.sleep(delay)


async def end_with_error(
    writer: SessionWriter, session_id: str, kind: str, message: str, *, stop: str = "end_turn"
) -> None:
    """End the turn with a `session.error` the client sees; the session accepts the next message."""
    from ._turn import turn_end

    def change(current: LoadedSession) -> Change:
        state = current.internal.turn or TurnState()
        events: list[Any] = []
        if state.open_span is not None:
            events.append(out.span_end(state.open_span, is_error=True))
        events += [out.error(kind, message, "exhausted"), out.idle({"type": stop})]
        return turn_end(current.internal.model_copy(update={"turn": None, "pending": {}}), events)

    await writer.apply(session_id, change)


async def terminate(writer: SessionWriter, session_id: str, kind: str, message: str) -> None:
    """An error no retry can fix: the session is terminated."""

    def change(current: LoadedSession) -> Change:
        state = current.internal.turn or TurnState()
        events: list[Any] = []
        if state.open_span is not None:
            events.append(out.span_end(state.open_span, is_error=True))
        events += [out.error(kind, message, "terminal"), out.terminated()]
        internal = current.internal.model_copy(update={"turn": None, "queue": [], "pending": {}})
        return Change(events=events, status="terminated", internal=internal)

    await writer.apply(session_id, change)


_END = {"type": "end_turn"}
