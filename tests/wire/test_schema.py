"""The models must also describe themselves (FastAPI builds OpenAPI from them)."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, TypeAdapter

import loophost.wire as wire

MODELS = sorted(
    (
        name
        for name in wire.__all__
        if isinstance(getattr(wire, name), type) and issubclass(getattr(wire, name), BaseModel)
    ),
)


def test_every_public_name_is_importable() -> None:
    missing = [name for name in wire.__all__ if not hasattr(wire, name)]
    assert missing == []
    assert len(MODELS) > 100


@pytest.mark.parametrize("name", MODELS)
def test_public_models_have_json_schemas(name: str) -> None:
    model: type[BaseModel] = getattr(wire, name)
    if model.__pydantic_generic_metadata__["parameters"]:
        model = model[dict[str, Any]]  # type: ignore[index]
    modes: tuple[Literal["validation", "serialization"], ...] = ("validation", "serialization")
    for mode in modes:
        schema = model.model_json_schema(mode=mode)
        assert schema


@pytest.mark.parametrize("union", [wire.SessionEvent, wire.StreamEvent, wire.EventParams, wire.Tool, wire.ToolParams])
def test_unions_have_json_schemas(union: Any) -> None:
    schema = TypeAdapter(union).json_schema()
    assert "oneOf" in schema or "anyOf" in schema or "discriminator" in schema
