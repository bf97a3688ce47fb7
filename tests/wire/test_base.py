from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from loophost.wire import (
    AgentUpdateParams,
    AlwaysAskPolicy,
    DocumentBlock,
    PlainTextDocumentSource,
    TextBlock,
    Timestamp,
    UserDefineOutcomeParams,
    UserMessageParams,
    WireModel,
    dump_dict,
    dump_json,
    format_timestamp,
    utcnow,
)

from ._helpers import as_json


class _Stamped(WireModel):
    at: Timestamp
    maybe: Timestamp | None = None


def test_timestamps_serialize_as_rfc3339_utc_z_with_microseconds() -> None:
    value = datetime(2026, 4, 7, 4, 27, 43, 197000, tzinfo=UTC)
    assert format_timestamp(value) == "2026-04-07T04:27:43.197000Z"
    assert as_json(_Stamped(at=value)) == {"at": "2026-04-07T04:27:43.197000Z", "maybe": None}


def test_timestamp_inputs_are_normalised_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    parsed = _Stamped.model_validate({"at": "2026-04-07T06:27:43.197+02:00", "maybe": "2026-04-07T04:27:43Z"})
    assert parsed.at == datetime(2026, 4, 7, 4, 27, 43, 197000, tzinfo=UTC)
    assert parsed.at.tzinfo == UTC
    assert parsed.maybe == datetime(2026, 4, 7, 4, 27, 43, tzinfo=UTC)
    naive = _Stamped(at=datetime(2026, 1, 1, 12, 0))
    assert naive.at.tzinfo == UTC
    assert format_timestamp(datetime(2026, 1, 1, 14, 0, tzinfo=plus_two)) == "2026-01-01T12:00:00.000000Z"


def test_milliseconds_parse_to_the_same_instant_as_microseconds() -> None:
    millis = _Stamped.model_validate({"at": "2026-04-07T04:27:43.197Z"})
    micros = _Stamped.model_validate({"at": "2026-04-07T04:27:43.197000Z"})
    assert millis == micros


def test_fixed_width_keeps_string_order_equal_to_time_order() -> None:
    earlier = datetime(2026, 4, 7, 4, 27, 43, 197000, tzinfo=UTC)
    later = earlier + timedelta(microseconds=500)
    assert format_timestamp(earlier) < format_timestamp(later)


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo == UTC
    assert abs(datetime.now(UTC) - now) < timedelta(seconds=5)


def test_dump_json_is_compact_utf8_in_declaration_order_with_defaults() -> None:
    block = TextBlock(text="héllo")
    raw = dump_json(block)
    assert isinstance(raw, bytes)
    assert raw == '{"type":"text","text":"héllo"}'.encode()
    assert dump_json(block) == raw  # stable


def test_wire_models_keep_unknown_fields_and_params_reject_them() -> None:
    block = TextBlock.model_validate({"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}})
    assert json.loads(dump_json(block)) == {
        "type": "text",
        "text": "a",
        "cache_control": {"type": "ephemeral"},
    }
    with pytest.raises(ValidationError) as info:
        UserMessageParams.model_validate(
            {"type": "user.message", "content": [{"type": "text", "text": "a"}], "extra": 1}
        )
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]


def test_omitted_and_null_are_told_apart_by_model_fields_set() -> None:
    omitted = AgentUpdateParams.model_validate({"name": "x"})
    cleared = AgentUpdateParams.model_validate({"name": "x", "system": None})
    assert omitted.system is None
    assert cleared.system is None
    assert "system" not in omitted.model_fields_set
    assert "system" in cleared.model_fields_set
    # a client dumping the body keeps the difference on the wire
    assert dump_dict(omitted, exclude_unset=True) == {"name": "x"}
    assert dump_dict(cleared, exclude_unset=True) == {"name": "x", "system": None}


def test_defaulted_type_tags_survive_exclude_unset_dumps() -> None:
    params = UserDefineOutcomeParams.model_validate(
        {"type": "user.define_outcome", "description": "d", "rubric": {"type": "text", "content": "r"}}
    )
    assert dump_dict(params, exclude_unset=True) == {
        "type": "user.define_outcome",
        "description": "d",
        "rubric": {"type": "text", "content": "r"},
    }
    assert dump_dict(AlwaysAskPolicy(), exclude_unset=True) == {"type": "always_ask"}


def test_sparse_models_leave_out_unset_optionals_but_keep_explicit_nulls() -> None:
    source = PlainTextDocumentSource(data="hi")
    assert as_json(DocumentBlock(source=source)) == {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "hi"},
    }
    assert as_json(DocumentBlock(source=source, title=None))["title"] is None
