"""Session budgets (spec-2 §5.3): list prices, the spend a session has accrued, and the update rules.

A budget caps a session's *list* cost in whole US cents. The spend is kept exactly (a decimal string of cents in
`SessionInternal.spent`) and only for sessions that have a budget, so a plain session's turn does no pricing at
all. It is checked between model requests (`engine/_turn.py`): a thread whose spend reached the cap pauses
(`idle` with `budget_reached`, the turn kept) before its next request, so the final cost may overshoot by one
request. Raising or removing the budget resumes it (`_sessions.py`).

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
from ._errors import InvalidRequest
from ._state import SessionInternal
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
