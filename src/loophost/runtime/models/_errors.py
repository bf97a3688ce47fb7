"""Model errors: the routing failures we raise, and how provider failures are classified.

The runtime decides between "reschedule with backoff" and "end the turn with an error" from
`is_transient_model_error`, and names the failure on the wire with `model_error_type`. Both read the
exceptions pydantic-ai raises (it maps SDK and transport failures to `ModelAPIError` categories), and
also accept the raw SDK / transport exceptions in case one escapes unmapped.
"""

from __future__ import annotations

import sys
from typing import Literal

import httpx2
from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelConnectionError,
    ModelHTTPError,
    ModelOverloadedError,
    ModelQuotaExceededError,
    ModelRateLimitError,
    ModelRequestRejectedError,
    ModelRequestTimeout,
    ModelServerError,
    ModelUnavailableError,
    RunCancelled,
)

ModelErrorType = Literal[
    "model_overloaded_error",
    "model_rate_limited_error",
    "model_request_failed_error",
    "unknown_error",
]
"""The `session.error` types a model failure maps to on the wire."""


class ModelRoutingError(Exception):
    """Base of the errors `resolve_model` raises: the agent's model id cannot be turned into a model."""


class UnknownModelError(ModelRoutingError, ValueError):
    """The model id matches no route (`scripted`, `claude-*`, `openai:<name>`, `<endpoint>:<name>`)."""


class ModelConfigurationError(ModelRoutingError):
    """The route is known but cannot be used as configured, e.g. its API key is not set."""


_TRANSIENT_STATUS_CODES = frozenset({408, 409, 425, 429, 529})
"""Statuses worth retrying besides 5xx (the same set the Anthropic and OpenAI SDKs retry, plus 425/529)."""


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status of a pydantic-ai or raw SDK error, if it has one."""
    if isinstance(exc, ModelHTTPError):
        return exc.status_code
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and _is_sdk_status_error(exc):
        return status
    return None


def _is_sdk_status_error(exc: BaseException) -> bool:
    """Whether `exc` is an `anthropic`/`openai` `APIStatusError`; only checks SDKs already imported."""
    for module_name in ("anthropic", "openai"):
        module = sys.modules.get(module_name)
        status_error = getattr(module, "APIStatusError", None) if module is not None else None
        if isinstance(status_error, type) and isinstance(exc, status_error):
            return True
    return False


def _is_sdk_connection_error(exc: BaseException) -> bool:
    """Whether `exc` is an SDK `APIConnectionError` (`APITimeoutError` is a subclass); no SDK import."""
    for module_name in ("anthropic", "openai"):
        module = sys.modules.get(module_name)
        connection_error = getattr(module, "APIConnectionError", None) if module is not None else None
        if isinstance(connection_error, type) and isinstance(exc, connection_error):
            return True
    return False


def _is_transient_status(status: int) -> bool:
    return status in _TRANSIENT_STATUS_CODES or 500 <= status < 600


def is_transient_model_error(exc: BaseException) -> bool:
    """Whether retrying the same model request later may succeed.

    True for overloaded (529, or 503 saying so), unavailable, rate limited (429), other 5xx, request
    timeouts and connection failures, in whatever shape they arrive: pydantic-ai's categories
    (`ModelOverloadedError`, `ModelRateLimitError`, `ModelServerError`, `ModelConnectionError`,
    `ModelTimeoutError`, `ModelRequestTimeout`), a bare `ModelHTTPError` with such a status, the raw
    `anthropic`/`openai` `APIStatusError`/`APIConnectionError`, `httpx2` transport errors, or a builtin
    `TimeoutError`/`ConnectionError`. False for everything else, including an exhausted quota (a 429 that
    pydantic-ai classifies as `ModelQuotaExceededError`: waiting won't help), rejected requests (400, 401,
    403, 404, 413, 422) and run cancellation. An exception group is transient when all of its members are.
    """
    if isinstance(exc, BaseExceptionGroup):
        return bool(exc.exceptions) and all(is_transient_model_error(e) for e in exc.exceptions)
    if isinstance(exc, RunCancelled):  # a run timeout is a TimeoutError too, but not a model failure
        return False
    if isinstance(exc, ModelQuotaExceededError | ModelRequestRejectedError):
        return False
    if isinstance(
        exc,
        ModelRateLimitError | ModelUnavailableError | ModelServerError | ModelConnectionError | ModelRequestTimeout,
    ):
        return True
    status = _status_of(exc)
    if status is not None:
        return _is_transient_status(status)
    if isinstance(exc, ModelAPIError):
        return False
    if _is_sdk_connection_error(exc):
        return True
    return isinstance(exc, httpx2.TransportError | TimeoutError | ConnectionError)


def model_error_type(exc: BaseException) -> ModelErrorType:
    """The wire `session.error` type for a model failure.

    `model_overloaded_error` for overloaded/unavailable (529, 503), `model_rate_limited_error` for a rate
    limit (429, but not an exhausted quota), `model_request_failed_error` for any other failure of the
    model request (other HTTP statuses, connection failures, timeouts), `unknown_error` for anything that
    is not a model request failure.
    """
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return model_error_type(exc.exceptions[0])
    if isinstance(exc, RunCancelled):
        return "unknown_error"
    if isinstance(exc, ModelOverloadedError | ModelUnavailableError):
        return "model_overloaded_error"
    if isinstance(exc, ModelRateLimitError):
        return "model_rate_limited_error"
    if isinstance(exc, ModelQuotaExceededError):
        return "model_request_failed_error"
    status = _status_of(exc)
    if status is not None:
        if status in (503, 529):
            return "model_overloaded_error"
        if status == 429:
            return "model_rate_limited_error"
        return "model_request_failed_error"
    if isinstance(exc, ModelAPIError) or _is_sdk_connection_error(exc):
        return "model_request_failed_error"
    if isinstance(exc, httpx2.TransportError | TimeoutError | ConnectionError):
        return "model_request_failed_error"
    return "unknown_error"
