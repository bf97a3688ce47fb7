"""Budget arithmetic and rules (`runtime/_budgets.py`): exact spend, whole-cent reporting, list prices."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loophost import wire
from loophost.runtime._budgets import (
    add_cost,
    has_list_price,
    list_cost,
    reached,
    request_cost,
)
from loophost.runtime.store import TokenCounts


def _budget(cents: str) -> wire.Budget:
    return wire.Budget.model_validate({"type": "limit", "max_list_cost": {"amount": cents, "currency": "USD"}})


@pytest.mark.parametrize("bad", ["0", "25.00", "007", "-1", "", "1e3"])
def test_budget_amounts_are_positive_whole_cents(bad: str) -> None:
    with pytest.raises(ValueError, match=r"amount|pattern|string"):
        _budget(bad)


def test_budget_currency_is_usd() -> None:
    with pytest.raises(ValueError, match="USD"):
        wire.Budget.model_validate({"type": "limit", "max_list_cost": {"amount": "5", "currency": "EUR"}})


def test_scripted_costs_a_cent_per_token() -> None:
    assert request_cost("scripted", TokenCounts(3, 2, 0, 0), None) == Decimal(5)


@given(st.lists(st.decimals(min_value=0, max_value=10_000, places=6), max_size=20))
def test_spend_is_exact_and_reported_rounded(costs: list[Decimal]) -> None:
    spent: str | None = None
    for cost in costs:
        spent = add_cost(spent, cost)
    total = sum(costs, Decimal(0))
    assert Decimal(spent or "0") == total
    assert abs(Decimal(list_cost(spent).amount) - total) <= Decimal("0.5")


def test_an_unpriced_request_reaches_any_budget() -> None:
    spent = add_cost("3", None)
    assert reached(_budget("1000000"), spent)
    assert list_cost(spent).amount == "0"  # nothing finite to report
    assert not reached(None, spent)
    assert reached(_budget("3"), "3")
    assert not reached(_budget("4"), "3.9")


def test_list_prices_come_from_genai_prices() -> None:
    assert has_list_price("scripted")
    assert has_list_price("claude-sonnet-4-5")
    assert has_list_price("openai:gpt-4o")
    assert not has_list_price("no-such-model-has-a-price")
