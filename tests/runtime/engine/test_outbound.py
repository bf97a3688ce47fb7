"""The fixed-shape events the engine writes straight to JSON (`_outbound.stored`) are exactly what the wire models
would have written: they parse as their wire types, and dumping the parsed model gives the same bytes."""

from __future__ import annotations

import json

import pytest

from loophost import wire
from loophost.runtime.engine import _outbound as out
from loophost.runtime.store import NewEvent

BUILT = [
    out.running(),
    out.span_start("sevt_start"),
    out.span_end("sevt_start", {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 1}),
    out.span_end("sevt_start", is_error=True),
    out.idle({"type": "end_turn"}),
    out.idle({"type": "requires_action", "event_ids": ["sevt_a", "sevt_b"]}),
    out.idle({"type": "retries_exhausted"}),
]


@pytest.mark.parametrize("event", BUILT, ids=lambda e: e.type)
def test_a_stored_event_is_what_its_wire_model_writes(event: NewEvent) -> None:
    parsed = wire.parse_event(json.loads(event.body))
    assert parsed.type == event.type and parsed.id == event.id
    assert parsed.model_dump_json(by_alias=True, exclude_unset=True) == event.body
    assert json.loads(event.body)["processed_at"] == event.processed_at


def test_each_event_has_its_own_id_and_the_span_end_names_its_start() -> None:
    ids = [e.id for e in BUILT if e.type != "span.model_request_start"]
    assert len(set(ids)) == len(ids)
    assert all(json.loads(e.body)["model_request_start_id"] == "sevt_start" for e in BUILT if e.type.endswith("_end"))
