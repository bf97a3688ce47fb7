"""Why a session or thread went idle (spec §4.5): `stop_reason` and `stop_details`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ._base import WireModel

SessionStatus = Literal["idle", "running", "rescheduling", "terminated"]


class EndTurnStopReason(WireModel):
    """The agent finished, or the turn was interrupted (there is no separate interrupt reason)."""

    type: Literal["end_turn"] = "end_turn"


class RequiresActionStopReason(WireModel):
    """Blocked on these event ids (custom tool uses, ask-gated or self-hosted tool uses)."""

    type: Literal["requires_action"] = "requires_action"
    event_ids: list[str]


class RetriesExhaustedStopReason(WireModel):
    type: Literal["retries_exhausted"] = "retries_exhausted"


class BudgetReachedStopReason(WireModel):
    """Paused at the budget cap; only settle events are accepted until the budget is raised."""

    type: Literal["budget_reached"] = "budget_reached"


class RefusalStopReason(WireModel):
    type: Literal["refusal"] = "refusal"


StopReason = Annotated[
    EndTurnStopReason
    | RequiresActionStopReason
    | RetriesExhaustedStopReason
    | BudgetReachedStopReason
    | RefusalStopReason,
    Field(discriminator="type"),
]


class StopDetails(WireModel):
    """Details of a refusal. `category` is one of cyber, bio, frontier_llm, reasoning_extraction,
    general_harms or null; kept as a plain string because new values may appear."""

    type: Literal["refusal"] = "refusal"
    category: str | None = None
    explanation: str | None = None
