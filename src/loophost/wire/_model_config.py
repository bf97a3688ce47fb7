"""The agent's model: accepted as a bare id or an object, always answered as a resolved object (§2.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from ._base import ParamsModel, WireModel

EffortLevel = Literal["low", "medium", "high", "xhigh", "max"]
Speed = Literal["standard", "fast"]


class Effort(WireModel):
    """`{"type": "high"}`; requests may also send the bare level string."""

    type: EffortLevel


class ModelConfig(WireModel):
    """Resolved `model` of an agent or session snapshot: `{id, effort, speed, inference_geo}`."""

    id: str
    effort: Effort | None = None
    speed: Speed | None = None
    inference_geo: str | None = None


class ModelConfigParams(ParamsModel):
    """The object form of `model` in a request. `effort` may be `"high"` or `{"type": "high"}`."""

    id: Annotated[str, Field(min_length=1)]
    effort: Effort | None = None
    speed: Speed | None = None
    inference_geo: str | None = None

    @field_validator("effort", mode="before")
    @classmethod
    def _bare_effort(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value


ModelParam = Annotated[str, Field(min_length=1)] | ModelConfigParams
"""`model` as a request sends it: a model id string or a `ModelConfigParams` object."""


def resolve_model(
    value: str | ModelConfigParams | ModelConfig | Mapping[str, Any],
    current: ModelConfig | None = None,
) -> ModelConfig:
    """Turn any accepted `model` form into the resolved object.

    Whole-object replacement (update semantics): `speed` and `inference_geo` come only from `value`, so
    omitting them clears them. `effort` is the exception: when `value` does not mention it, the
    `current` model's effort is kept (None on create; the per-model default is not known here).
    """
    if isinstance(value, ModelConfig):
        return value.model_copy(deep=True)
    if isinstance(value, str):
        return ModelConfig(id=value, effort=_kept_effort(current))
    params = value if isinstance(value, ModelConfigParams) else ModelConfigParams.model_validate(value)
    effort = params.effort if "effort" in params.model_fields_set else _kept_effort(current)
    return ModelConfig(id=params.id, effort=effort, speed=params.speed, inference_geo=params.inference_geo)


def _kept_effort(current: ModelConfig | None) -> Effort | None:
    if current is None or current.effort is None:
        return None
    return current.effort.model_copy()
