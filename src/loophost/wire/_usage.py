"""Usage, cost and timing counters shared by sessions, threads and span events."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from ._base import WireModel


def _null_is_zero(value: Any) -> Any:
    return 0 if value is None else value


class MonetaryAmount(WireModel):
    """`amount` is an integer string in minor units ("2500" = $25.00), so no float rounding ever applies."""

    amount: Annotated[str, Field(pattern=r"^(0|[1-9][0-9]*)$")]
    currency: str = "USD"


class Budget(WireModel):
    """`{type:"limit", max_list_cost}`: the session stops issuing model requests at this list cost."""

    type: Literal["limit"] = "limit"
    max_list_cost: MonetaryAmount

    @field_validator("max_list_cost")
    @classmethod
    def _whole_us_cents(cls, value: MonetaryAmount) -> MonetaryAmount:
        if value.currency != "USD":
            raise ValueError("max_list_cost.currency must be 'USD'")
        if value.amount == "0":
            raise ValueError("max_list_cost.amount must be a positive whole number of US cents")
        return value


class CacheCreation(WireModel):
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0

    _zero = field_validator("*", mode="before")(_null_is_zero)


class ServerToolUse(WireModel):
    web_search_requests: int = 0
    web_fetch_requests: int = 0

    _zero = field_validator("*", mode="before")(_null_is_zero)


class SessionUsage(WireModel):
    """Cumulative usage of a session or thread. Token counters are ints from 0 (a null reads as 0)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation: CacheCreation = Field(default_factory=CacheCreation)
    active_seconds: float | None = None
    list_cost: MonetaryAmount | None = None
    server_tool_use: ServerToolUse | None = None

    _zero = field_validator("input_tokens", "output_tokens", "cache_read_input_tokens", mode="before")(_null_is_zero)

    @field_validator("cache_creation", mode="before")
    @classmethod
    def _null_cache_creation(cls, value: Any) -> Any:
        return {} if value is None else value


class SessionStats(WireModel):
    active_seconds: float | None = None
    duration_seconds: float | None = None


class SessionThreadStats(SessionStats):
    startup_seconds: float | None = None


class ModelUsage(WireModel):
    """Usage of one model request (`span.model_request_end.model_usage`); the four counters are required."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    speed: Literal["standard", "fast"] | None = None
