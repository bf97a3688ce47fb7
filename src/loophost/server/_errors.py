"""The error envelope of spec §0.1 for every failure, with the status that picks the SDK's exception class.

A client's mistake is always a 4xx with the envelope; a 5xx means a bug of ours, and says so without details.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..runtime import (
    Conflict,
    CursorOutOfRange,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RuntimeFailure,
    Unavailable,
)

log = logging.getLogger("loophost.server")

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    412: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
}


class ApiError(Exception):
    """Raised by the server layer itself (auth, limits, parameters) with an explicit status."""

    def __init__(self, status: int, message: str, *, code: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = {"error_code": code, **details}


def status_for(exc: RuntimeFailure) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, PayloadTooLarge):
        return 413
    if isinstance(exc, PreconditionFailed):
        return 412
    if isinstance(exc, CursorOutOfRange | InvalidRequest):
        return 400
    if isinstance(exc, Unavailable):
        return 503
    return 500


def envelope(
    request: Request, status: int, message: str, details: dict[str, Any] | None = None, *, error_type: str | None = None
) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    return error_response(request_id, status, message, details, error_type=error_type)


def error_response(
    request_id: str | None,
    status: int,
    message: str,
    details: dict[str, Any] | None = None,
    *,
    error_type: str | None = None,
) -> JSONResponse:
    """The envelope of spec §0.1 as a response, for a request known by its id."""
    error: dict[str, Any] = {"type": error_type or _STATUS_TYPES.get(status, "api_error"), "message": message}
    if details:
        error["details"] = details
    body = {"type": "error", "error": error, "request_id": request_id}
    headers = {"request-id": request_id} if request_id else {}
    if status == 409:
        headers["x-should-retry"] = "false"  # deterministic: retrying cannot help
    return JSONResponse(body, status_code=status, headers=headers)


def failure_response(request_id: str | None, exc: RuntimeFailure | ApiError, method: str, path: str) -> JSONResponse:
    """A typed failure as its envelope: an `ApiError` with its own status, a runtime failure by its class."""
    if isinstance(exc, ApiError):
        return error_response(request_id, exc.status, exc.message, exc.details)
    status = status_for(exc)
    if status == 503:
        log.warning("database unavailable answering %s %s: %s", method, path, exc)
    elif status >= 500:
        log.error("runtime failure answering %s %s: %s", method, path, exc)
    error_type = exc.error_type  # a 409 may be more specific than conflict_error (memory_path_conflict_error)
    return error_response(request_id, status, exc.message, exc.to_details(), error_type=error_type)


def validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    """The first few validation errors, each `where: what` (the body itself is not named)."""
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",))
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RuntimeFailure)
    async def runtime_failure(request: Request, exc: RuntimeFailure) -> JSONResponse:
        return failure_response(getattr(request.state, "request_id", None), exc, request.method, request.url.path)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return envelope(request, exc.status, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope(request, 400, validation_message(exc.errors()), {"error_code": "validation_error"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        return envelope(request, exc.status_code, message, {"error_code": f"http_{exc.status_code}"})

    # Unexpected exceptions are answered by the RequestContext middleware (a 500 envelope that keeps the
    # connection usable), not by an exception handler here.
