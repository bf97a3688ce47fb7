from __future__ import annotations

import pytest
from pydantic import ValidationError

from loophost.wire import ErrorDetail, ErrorEnvelope

from ._helpers import as_json, roundtrip


def test_spec_error_envelope_round_trips() -> None:
    doc = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "human text",
            "details": {"error_code": "some_stable_code", "field": "name"},
        },
        "request_id": "req_0123",
    }
    envelope = roundtrip(ErrorEnvelope, doc)
    assert isinstance(envelope, ErrorEnvelope)
    assert envelope.error.details == {"error_code": "some_stable_code", "field": "name"}


def test_details_and_request_id_are_optional() -> None:
    envelope = ErrorEnvelope.model_validate({"type": "error", "error": {"type": "not_found_error", "message": "x"}})
    assert envelope.request_id is None
    assert envelope.error.details is None
    assert as_json(envelope) == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "x", "details": None},
        "request_id": None,
    }


def test_build_puts_error_code_first_in_details() -> None:
    envelope = ErrorEnvelope.build(
        "invalid_request_error",
        "heartbeat mismatch",
        request_id="req_1",
        error_code="heartbeat_precondition_failed",
        current_state={"state": "active"},
    )
    assert as_json(envelope) == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "heartbeat mismatch",
            "details": {"error_code": "heartbeat_precondition_failed", "current_state": {"state": "active"}},
        },
        "request_id": "req_1",
    }
    assert ErrorEnvelope.build("api_error", "boom").error.details is None


@pytest.mark.parametrize("kind", ["conflict_error", "memory_precondition_failed_error", "overloaded_error"])
def test_known_error_types_are_accepted(kind: str) -> None:
    assert ErrorDetail.model_validate({"type": kind, "message": "m"}).type == kind


def test_unknown_error_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        ErrorDetail.model_validate({"type": "teapot_error", "message": "m"})
