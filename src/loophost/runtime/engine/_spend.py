"""The turn engine's side of budgets (`runtime/_budgets.py`): charging a request, pausing at the cap.

Only sessions with a budget (`SessionInternal.budget` set) come here; a plain turn checks one attribute.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic_ai.messages import ModelResponse

from .. import _budgets as budgets
from .._errors import NotFound
from .._state import SessionInternal
from .._writer import Change, LoadedSession, SessionWriter
from ..store import TokenCounts
from . import _outbound as out


def charged(internal: SessionInternal, model_id: str, tokens: TokenCounts, response: ModelResponse) -> SessionInternal:
    """`internal` with one more request's list cost added to the spend."""
    state = internal.budget
    if state is None:
        return internal
    spent = budgets.add_cost(state.spent, budgets.request_cost(model_id, tokens, response))
    return internal.model_copy(update={"budget": state.model_copy(update={"spent": spent})})


def usage_event(
    current: LoadedSession, tokens: TokenCounts | None, internal: SessionInternal, threads: Decimal = Decimal(0)
) -> Any:
    """`session.usage` with the cumulative usage once this commit's `tokens` are counted (the list cost with what
    the session's `threads` spent)."""
    usage = current.session.usage
    if tokens is not None:
        cache = usage.cache_creation.model_copy(
            update={"ephemeral_5m_input_tokens": usage.cache_creation.ephemeral_5m_input_tokens + tokens[3]}
        )
        usage = usage.model_copy(
            update={
                "input_tokens": usage.input_tokens + tokens[0],
                "output_tokens": usage.output_tokens + tokens[1],
                "cache_read_input_tokens": usage.cache_read_input_tokens + tokens[2],
                "cache_creation": cache,
            }
        )
    spent = internal.budget.spent if internal.budget is not None else None
    if threads and spent is not None:
        spent = str(budgets.spent_cents(spent) + threads)
    return budgets.usage_event(out.event_id(), usage, current.document.budget, spent)


def over_budget(loaded: LoadedSession, threads: Decimal = Decimal(0)) -> bool:
    state = loaded.internal.budget
    return state is not None and budgets.reached(
        loaded.document.budget, str(budgets.spent_cents(state.spent) + threads)
    )


async def cap_reached(writer: SessionWriter, loaded: LoadedSession) -> bool:
    """Before a model request of a session with a budget state: the cap of its primary session is reached,
    counting the requests of every thread (a child thread checks its coordinator's budget)."""
    link = loaded.internal.parent
    if link is not None:
        try:
            primary = await writer.load(link.workspace, link.session_id)
        except (LookupError, NotFound):
            return False
        return over_budget(primary, await budgets.threads_spent(writer, primary))
    if loaded.internal.threads:
        return over_budget(loaded, await budgets.threads_spent(writer, loaded))
    return over_budget(loaded)


def pause(current: LoadedSession, threads: Decimal = Decimal(0), *, child: bool = False) -> Change:
    """Idle with `budget_reached` before the next request, the turn kept for the resume. A span the turn's start
    opened for that request is closed unused (the resumed request opens its own). `threads`: what the session's
    child threads spent; `child`: a child thread, whose coordinator's budget was found reached."""
    state = current.internal.budget
    if state is None or current.status != "running" or not (child or over_budget(current, threads)):
        return Change()
    events: list[Any] = []
    turn = current.internal.turn
    if turn is not None and turn.open_span is not None:
        events.append(out.span_end(turn.open_span))
        turn = turn.model_copy(update={"open_span": None, "requests": max(0, turn.requests - 1)})
    internal = current.internal.model_copy(update={"turn": turn, "budget": state.model_copy(update={"paused": True})})
    events += [usage_event(current, None, internal, threads), out.idle({"type": "budget_reached"})]
    return Change(events=events, status="idle", internal=internal)
