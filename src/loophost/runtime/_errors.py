"""Typed runtime errors.

Every failure a caller can cause is one of these, so the server can map each to the wire error envelope
(`error_type` is the envelope's `error.type`, `code` its `details.error_code`) without the runtime knowing
about HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RuntimeFailure(Exception):
    """Base of every error the runtime raises on purpose."""

    error_type: ClassVar[str] = "api_error"
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details

    def to_details(self) -> dict[str, Any]:
        return {"error_code": self.code, **self.details}


class InvalidRequest(RuntimeFailure):
    """The request is malformed or not allowed in the resource's current state (HTTP 400)."""

    error_type = "invalid_request_error"
    default_code = "invalid_request"


class NotFound(RuntimeFailure):
    """No such resource in this workspace (another workspace's ids are not found too) (HTTP 404)."""

    error_type = "not_found_error"
    default_code = "not_found"


class Conflict(RuntimeFailure):
    """The resource's state forbids the change: archived, running, version mismatch (HTTP 409)."""

    error_type = "conflict_error"
    default_code = "conflict"


class PreconditionFailed(RuntimeFailure):
    """A conditional write whose condition no longer holds: a work item's heartbeat that does not echo the last
    one (another worker may hold the lease) (HTTP 412)."""

    error_type = "invalid_request_error"
    default_code = "precondition_failed"


class CursorOutOfRange(InvalidRequest):
    """A replay cursor beyond the end of the log, or one that cannot be served."""

    default_code = "cursor_out_of_range"


class PayloadTooLarge(RuntimeFailure):
    """An event or body over the configured size limit; never retried (HTTP 413)."""

    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class StaleWrite(Conflict):
    """A compare-and-set on a session's revision lost to a concurrent writer (internal; retried)."""

    default_code = "stale_write"


class LeaseLost(StaleWrite):
    """A write of a session's turn carried a lease that moved on (another node owns the session now): nothing was
    written, and the worker that tried drops the session (internal)."""

    default_code = "lease_lost"


class Unavailable(RuntimeFailure):
    """The database cannot be reached right now (down, restarting, connection dropped): nothing was written, or
    the write's outcome was checked and it was not; retrying later can succeed (HTTP 503)."""

    default_code = "unavailable"


class StoreClosed(RuntimeFailure):
    """The store was closed while an operation was pending."""

    default_code = "store_closed"
