"""The JSON error envelope (spec §0.1) that every non-2xx response and SSE `event: error` frame carries."""

from __future__ import annotations

from typing import Any, Literal

from ._base import WireModel

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "rate_limit_error",
    "timeout_error",
    "api_error",
    "overloaded_error",
    "conflict_error",
    "memory_precondition_failed_error",
    "memory_path_conflict_error",
]
"""`error.type` values the SDK knows; the HTTP status, not this, picks the SDK exception class."""


class ErrorDetail(WireModel):
    """`error` inside the envelope. The SDK maps `details.error_code` to `err.error_code`."""

    type: ErrorType
    message: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(WireModel):
    """`{"type":"error","error":{...},"request_id":...}`; `request_id` mirrors the `request-id` header."""

    type: Literal["error"] = "error"
    error: ErrorDetail
    request_id: str | None = None

    @classmethod
    def build(
        cls,
        error_type: ErrorType,
        message: str,
        *,
        request_id: str | None = None,
        error_code: str | None = None,
        **details: Any,
    ) -> ErrorEnvelope:
        """Envelope with `details` = `{"error_code": ..., **details}` (or no details when both are empty)."""
        body: dict[str, Any] = {}
        if error_code is not None:
            body["error_code"] = error_code
        body.update(details)
        return cls(error=ErrorDetail(type=error_type, message=message, details=body or None), request_id=request_id)
