"""Shared helpers for the wire tests."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from loophost.wire import dump_json

T0 = "2026-04-07T04:27:43.197000Z"
T1 = "2026-04-07T04:28:00.000000Z"


def as_json(model: BaseModel) -> Any:
    """What the server would send for `model`, decoded again."""
    return json.loads(dump_json(model))


def roundtrip(model_cls: type[BaseModel], doc: dict[str, Any]) -> BaseModel:
    """Parse `doc`, check that dumping gives back the same JSON, and return the parsed model."""
    parsed = model_cls.model_validate(doc)
    assert as_json(parsed) == doc
    again = model_cls.model_validate_json(dump_json(parsed))
    assert again == parsed
    return parsed
