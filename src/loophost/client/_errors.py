"""The client's exceptions: one base, one type per way a run can fail.

Every error that concerns a host-side session carries its `session_id`, so the caller can resume it.
"""

from __future__ import annotations

from typing import Any

__all__ = (
    "ClientError",
    "ConnectionLost",
    "HostError",
    "MaxTurnsExceeded",
    "OutputValidationError",
    "ProvisionError",
    "RunHalted",
    "SessionClosed",
    "SessionTimeout",
    "TokenLimitExceeded",
    "UnresolvedRequiresAction",
)


class ClientError(Exception):
    """Base of every loophost client error."""

    def __init__(self, message: str, *, session_id: str | None = None) -> None:
        super().__init__(message)
        self.session_id = session_id


class HostError(ClientError):
    """The host answered a request with an error (HTTP status, AWS error type, runtime exception).

    `status` is the HTTP status (0 when there was none), `error_type` the host's own error type name,
    `retryable` whether trying again later could succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        error_type: str | None = None,
        body: Any = None,
        retryable: bool = False,
        session_id: str | None = None,
    ) -> None:
        super().__init__(message, session_id=session_id)
        self.status = status
        self.error_type = error_type
        self.body = body
        self.retryable = retryable


class ConnectionLost(ClientError):
    """The transport to the host failed (connection refused or reset, stream cut, timeout on a read).

    `delivered` says whether the input of the turn reached the host: True, False, or None when unknown
    (the request may have been received before the connection broke).
    """

    def __init__(self, message: str, *, delivered: bool | None = None, session_id: str | None = None) -> None:
        super().__init__(message, session_id=session_id)
        self.delivered = delivered


class SessionTimeout(ClientError):
    """The run's `timeout` passed. The host-side session is still alive: resume it with `session_id=`."""


class SessionClosed(ClientError):
    """The live session was closed: no more results will come."""


class MaxTurnsExceeded(ClientError):
    """The request took more turns than `max_turns`."""


class TokenLimitExceeded(ClientError):
    """The request used more tokens than its limit allows."""


class RunHalted(ClientError):
    """The `turn_guard` stopped the run; `reason` is what the guard gave."""

    def __init__(self, message: str, *, reason: Any, session_id: str | None = None) -> None:
        super().__init__(message, session_id=session_id)
        self.reason = reason


class UnresolvedRequiresAction(ClientError):
    """The host waits on the client, but no tool use it names could be found (an empty resume is never sent)."""


class OutputValidationError(ClientError):
    """Structured output: the agent gave no valid output within the allowed attempts."""


class ProvisionError(ClientError):
    """Creating or finding the host-side agent or environment failed."""
