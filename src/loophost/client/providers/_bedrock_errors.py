"""The Bedrock AgentCore errors: one `HostError` subclass per AWS error type, and the mapping from HTTP answers
and exception frames to them (by `x-amzn-ErrorType`, else the body's `__type`, else the status)."""

from __future__ import annotations

import json
from typing import Any

from .._errors import ConnectionLost, HostError

_OVERFLOW = ("input is too long", "prompt is too long", "too many total text bytes")


class AgentCoreError(HostError):
    """An error answered by AgentCore: an HTTP error before the stream, or an exception frame inside it."""


class ValidationError(AgentCoreError):
    """The request was malformed (ARN, session id, messages, mismatched toolUse/toolResult)."""


class ContextOverflowError(ValidationError):
    """The conversation no longer fits the model's context window."""


class AccessDeniedError(AgentCoreError):
    """The caller lacks a permission (`bedrock-agentcore:InvokeHarness`, `InvokeAgentRuntime`, `iam:PassRole`...)."""


class AuthenticationError(AgentCoreError):
    """The request was not authenticated: bad signature, unknown key, expired token, or no credentials at all."""


class ResourceNotFoundError(AgentCoreError):
    """The harness (or qualifier) does not exist."""


class ConflictError(AgentCoreError):
    """The resource is in a conflicting state, e.g. a harness name already taken."""


class ThrottlingError(AgentCoreError):
    """The request rate was too high; retried with backoff before the stream starts."""


class ServiceQuotaExceededError(AgentCoreError):
    """An account quota (harness count, concurrent sessions) was reached."""


class InternalServerError(AgentCoreError):
    """AgentCore failed; retried with backoff before the stream starts, never once it has started."""


class RuntimeClientError(AgentCoreError):
    """The harness runtime reported a client-side fault (the newer `RuntimeClientError`, 424 or in-stream)."""


class TruncatedStreamError(ConnectionLost):
    """The event stream ended (or broke: transport error, bad CRC) before its last message stopped."""


class CorruptStreamError(Exception):
    """A frame failed its CRC or length checks: nothing after it can be trusted."""


_ERROR_TYPES: dict[str, type[AgentCoreError]] = {
    "validationexception": ValidationError,
    "accessdeniedexception": AccessDeniedError,
    "invalidsignatureexception": AuthenticationError,
    "signaturedoesnotmatch": AuthenticationError,
    "incompletesignatureexception": AuthenticationError,
    "missingauthenticationtokenexception": AuthenticationError,
    "unrecognizedclientexception": AuthenticationError,
    "expiredtokenexception": AuthenticationError,
    "resourcenotfoundexception": ResourceNotFoundError,
    "conflictexception": ConflictError,
    "throttlingexception": ThrottlingError,
    "toomanyrequestsexception": ThrottlingError,
    "servicequotaexceededexception": ServiceQuotaExceededError,
    "internalserverexception": InternalServerError,
    "serviceunavailableexception": InternalServerError,
    "runtimeclienterror": RuntimeClientError,
}


def _class_for(error_type: str | None, status: int) -> type[AgentCoreError]:
    if error_type and error_type.lower() in _ERROR_TYPES:
        return _ERROR_TYPES[error_type.lower()]
    if status == 429:
        return ThrottlingError
    if status >= 500:
        return InternalServerError
    return {400: ValidationError, 401: AuthenticationError, 403: AccessDeniedError, 404: ResourceNotFoundError}.get(
        status, AgentCoreError
    )


def make_error(
    error_type: str | None, message: str, *, status: int = 0, body: Any = None, session_id: str | None = None
) -> AgentCoreError:
    """The typed error for an AWS error type (either case: `ValidationException` or `validationException`)."""
    cls = _class_for(error_type, status)
    if cls is ValidationError and any(marker in message.lower() for marker in _OVERFLOW):
        cls = ContextOverflowError
    retryable = cls in (ThrottlingError, InternalServerError) or status == 429 or status >= 500
    label = error_type or f"HTTP {status}"
    return cls(
        f"{label}: {message}",
        status=status,
        error_type=error_type,
        body=body,
        retryable=retryable,
        session_id=session_id,
    )


def http_error(
    status: int, error_type_header: str | None, content: bytes, *, session_id: str | None = None
) -> AgentCoreError:
    """A non-2xx rest-json answer: the type from `x-amzn-ErrorType` (`Name:uri` form allowed), else the body."""
    try:
        body: Any = json.loads(content) if content else {}
    except ValueError:
        body = {"message": content.decode("utf-8", "replace")}
    if not isinstance(body, dict):
        body = {"message": str(body)}
    error_type = error_type_header.split(":", 1)[0].strip() if error_type_header else None
    if not error_type:
        raw = body.get("__type") or body.get("code") or body.get("Code")
        error_type = str(raw).rsplit("#", 1)[-1] if raw else None
    message = str(body.get("message") or body.get("Message") or f"HTTP {status}")
    return make_error(error_type, message, status=status, body=body, session_id=session_id)
