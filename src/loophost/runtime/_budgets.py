"""Session budgets (spec-2 §5.3): list prices, the spend a session has accrued, and the update rules.

A budget caps a session's *list* cost in whole US cents. The spend is kept exactly (a decimal string of cents in
`SessionInternal.spent`) and only for sessions that have a budget, so a plain session's turn does no pricing at
all. It is checked between model requests (`engine/_turn.py`): a thread whose spend reached the cap pauses
(`idle` with `budget_reached`, the turn kept) before its next request, so the final cost may overshoot by one
request. Raising or removing the budget resumes it (`_sessions.py`).

A coordinator's budget counts its child threads' requests: each child thread (a hidden session) of a session
with a budget carries a budget state of its own and charges it in its response's commit, like any session, and
the coordinator's spend is its own plus its children's (`threads_spent`), so the sum stays exact across
concurrency and crashes. A child checks its coordinator's cap before each request; at it the child pauses, then
its coordinator (`engine/_threads.py`), and a raise resumes both.

List prices come from the `genai-prices` package (pydantic-ai's own price data); the scripted model costs one
cent per token, input and output alike. A model without a price is not budgetable: a budget on a session that
could run one is a 400 `model_not_budgetable`, and a response whose price cannot be computed stops the session
as `budget_reached`.
"""

from __future__ import annotations

import asyncio
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from .. import wire
from ._errors import InvalidRequest, NotFound
from ._ids import new_id
from ._state import SessionInternal
from ._writer import Change, LoadedSession, SessionWriter
from .store import TokenCounts

SCRIPTED_CENTS_PER_TOKEN = Decimal(1)
_SCRIPTED = "scripted"


def _provider(model_id: str) -> tuple[str | None, str]:
    """(genai-prices provider id, model name) of a loophost model id."""
    if model_id.startswith("openai:"):
        return "openai", model_id.removeprefix("openai:")
    if model_id.startswith("claude"):
        return "anthropic", model_id
    return None, model_id.split(":", 1)[-1]


@lru_cache(maxsize=256)
def has_list_price(model_id: str) -> bool:
    """Whether genai-prices knows this model's list price (imports the price data on first use: call on a thread)."""
    if model_id == _SCRIPTED:
        return True
    from genai_prices import data_snapshot

    provider_id, name = _provider(model_id)
    try:
        data_snapshot.get_snapshot().find_provider_model(name, None, provider_id, None)
    except LookupError:
        return False
    return True


def session_models(agent: wire.SessionAgent) -> list[str]:
    """Every model a session can run: its agent's and each roster agent's or advisor's."""
    models = [agent.model.id]
    roster = agent.multiagent
    if isinstance(roster, wire.SessionCoordinator):
        models += [a.model.id if isinstance(a, wire.SessionThreadAgent) else a.model for a in roster.agents]
    elif isinstance(roster, wire.SessionMultiagent20261001):
        if isinstance(roster.subagents, wire.SessionMembersEnabled):
            models += [a.model.id for a in roster.subagents.predefined_agents]
        if isinstance(roster.advisor, wire.AdvisorEnabled):
            models.append(roster.advisor.model)
    return list(dict.fromkeys(models))


def budget_paused(internal: SessionInternal) -> bool:
    """Idle at the cap with its turn (or an outcome's grading) kept; an interrupt since then dropped them, and
    there is nothing to resume."""
    state = internal.budget
    return state is not None and state.paused and (internal.turn is not None or internal.outcome is not None)


async def check_budgetable(agent: wire.SessionAgent) -> None:
    """400 `model_not_budgetable` unless every model the session can run has a list price."""
    for model_id in session_models(agent):
        if not await asyncio.to_thread(has_list_price, model_id):
            raise InvalidRequest(
                f"model {model_id!r} has no public list price, so a session that can run it cannot have a budget",
                code="model_not_budgetable",
            )


def cap_cents(budget: wire.Budget) -> Decimal:
    return Decimal(budget.max_list_cost.amount)


def spent_cents(spent: str | None) -> Decimal:
    return Decimal(spent) if spent else Decimal(0)


def request_cost(model_id: str, tokens: TokenCounts, response: Any) -> Decimal | None:
    """The list cost of one model request in cents, or None when it has no price (`response` is pydantic-ai's
    `ModelResponse`, priced by genai-prices)."""
    if model_id == _SCRIPTED:
        return SCRIPTED_CENTS_PER_TOKEN * sum(tokens)
    try:
        return Decimal(response.cost().total_price) * 100
    except (LookupError, ValueError, AssertionError):
        return None


def add_cost(spent: str | None, cost: Decimal | None) -> str:
    """The new spend; an unpriced request makes it infinite (the budget is reached at once)."""
    if cost is None:
        return "Infinity"
    return str(spent_cents(spent) + cost)


def reached(budget: wire.Budget | None, spent: str | None) -> bool:
    return budget is not None and spent_cents(spent) >= cap_cents(budget)


def list_cost(spent: str | None) -> wire.MonetaryAmount:
    """The spend as the wire reports it: whole cents, rounded."""
    cents = spent_cents(spent)
    whole = cents.quantize(Decimal(1), rounding=ROUND_HALF_UP) if cents.is_finite() else Decimal(0)
    return wire.MonetaryAmount(amount=str(int(whole)), currency="USD")


def usage_event(event_id: str, usage: wire.SessionUsage, budget: wire.Budget | None, spent: str | None) -> Any:
    """`session.usage`: the cumulative usage with its list cost, and the budget in force."""
    return wire.parse_event(
        {
            "id": event_id,
            "type": "session.usage",
            "processed_at": wire.utcnow(),
            "usage": usage.model_copy(update={"list_cost": list_cost(spent)}).model_dump(mode="json"),
            "budget": budget.model_dump(mode="json") if budget is not None else None,
        }
    )


def check_budget_update(session: wire.Session, budget: wire.Budget | None, spent: str | None) -> None:
    """The `sessions.update(budget=...)` rules (400 with the documented reason as `error_code`)."""
    if session.status == "terminated":
        raise InvalidRequest("a terminated session's budget cannot change", code="terminated")
    if session.budget is None:
        if budget is None:
            return
        raise InvalidRequest(
            "a budget can only be set when the session is created (and a removed one cannot be re-added)",
            code="budget_create_only",
        )
    if budget is not None and cap_cents(budget) <= spent_cents(spent):
        raise InvalidRequest(
            f"the new budget must be above the list cost already consumed ({list_cost(spent).amount} cents)",
            code="budget_not_raised",
        )


async def threads_spent(writer: SessionWriter, primary: LoadedSession) -> Decimal:
    """What a coordinator's child threads spent (each charges its own row, in its responses' commits)."""
    from ._threads import thread_workspace

    total = Decimal(0)
    for thread in primary.internal.threads or []:
        try:
            child = await writer.load(thread_workspace(primary.row.workspace), thread.id)
        except (LookupError, NotFound):
            continue
        if child.internal.budget is not None:
            total += spent_cents(child.internal.budget.spent)
    return total


async def session_spent(writer: SessionWriter, loaded: LoadedSession) -> str | None:
    """A session's spend with its threads' (None without a budget state)."""
    state = loaded.internal.budget
    if state is None:
        return None
    if not loaded.internal.threads:
        return state.spent
    return str(spent_cents(state.spent) + await threads_spent(writer, loaded))


def resumed(current: LoadedSession) -> Change:
    """A session (a child thread) paused at the cap runs on: its coordinator's budget was raised or removed."""
    state = current.internal.budget
    if state is None or not budget_paused(current.internal) or current.status != "idle":
        return Change()
    internal = current.internal.model_copy(update={"budget": state.model_copy(update={"paused": False})})
    running = wire.parse_event({"id": new_id("sevt"), "type": "session.status_running", "processed_at": wire.utcnow()})
    return Change(events=[running], internal=internal, status="running")
