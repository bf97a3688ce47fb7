"""The turn engine's side of budgets (`runtime/_budgets.py`): charging a request, pausing at the cap.

Only sessions with a budget (`SessionInternal.budget` set) come here; a plain turn checks one attribute.
"""

from __future__ import annotations

from typing import Any

from pydantic_ai.messages import ModelResponse

from .. import _budgets as budgets
from .._state import SessionInternal
from .._writer import Change, LoadedSession
from ..store import TokenCounts
from . import _outbound as out


def charged(internal: SessionInternal, model_id: str, tokens: TokenCounts, response: ModelResponse) -> SessionInternal:
    """`internal` with one more request's list cost added to the spend."""
    state = internal.budget
    if state is None:
        return internal
    spent = budgets.add_cost(state.spent, budgets.request_cost(model_id, tokens, response))
    return internal.model_copy(update={"budget": state.model_copy(update={"spent": spent})})


def usage_event(current: LoadedSession, tokens: TokenCounts | None, internal: SessionInternal) -> Any:
    """`session.usage` with the cumulative usage once this commit's `tokens` are counted."""
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
    return budgets.usage_event(out.event_id(), usage, current.document.budget, spent)


def over_budget(loaded: LoadedSession) -> bool:
    state = loaded.internal.budget
    return state is not None and budgets.reached(loaded.document.budget, state.spent)


def pause(current: LoadedSession) -> Change:
    """Idle with `budget_reached` before the next request, the turn kept for the resume. A span the turn's start
    opened for that request is closed unused (the resumed request opens its own)."""
    state = current.internal.budget
    if state is None or not over_budget(current) or current.status != "running":
        return Change()
    events: list[Any] = []
    turn = current.internal.turn
    if turn is not None and turn.open_span is not None:
        events.append(out.span_end(turn.open_span))
        turn = turn.model_copy(update={"open_span": None, "requests": max(0, turn.requests - 1)})
    internal = current.internal.model_copy(update={"turn": turn, "budget": state.model_copy(update={"paused": True})})
    events += [usage_event(current, None, internal), out.idle({"type": "budget_reached"})]
    return Change(events=events, status="idle", internal=internal)
