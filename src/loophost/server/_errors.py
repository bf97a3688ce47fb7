"""The error envelope of spec §0.1 for every failure, with the status that picks the SDK's exception class.

A client's mistake is always a 4xx with the envelope; a 5xx means a bug of ours, and says so without details.
"""

from __future__ import annotations

import logging
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
    RuntimeFailure,
)

log = logging.getLogger("loophost.server")

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
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
    if isinstance(exc, CursorOutOfRange | InvalidRequest):
        return 400
    return 500


def envelope(
    request: Request, status: int, message: str, details: dict[str, Any] | None = None, *, error_type: str | None = None
) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    error: dict[str, Any] = {"type": error_type or _STATUS_TYPES.get(status, "api_error"), "message": message}
    if details:
        error["details"] = details
    body = {"type": "error", "error": error, "request_id": request_id}
    headers = {"request-id": request_id} if request_id else {}
    if status == 409:
        headers["x-should-retry"] = "false"  # deterministic: retrying cannot help
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",))
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RuntimeFailure)
    async def runtime_failure(request: Request, exc: RuntimeFailure) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("runtime failure answering %s %s: %s", request.method, request.url.path, exc)
        error_type = exc.error_type if status != 409 else None
        return envelope(request, status, exc.message, exc.to_details(), error_type=error_type)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return envelope(request, exc.status, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope(request, 400, _validation_message(exc), {"error_code": "validation_error"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        return envelope(request, exc.status_code, message, {"error_code": f"http_{exc.status_code}"})

    # Unexpected exceptions are answered by the RequestContext middleware (a 500 envelope that keeps the
    # connection usable), not by an exception handler here.
