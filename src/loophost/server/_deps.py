"""What every route needs: the runtime, the caller's workspace, and the Claude wire's query conventions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from ..runtime import Runtime, _log_context
from ..runtime._clock import rfc3339
from ._errors import ApiError
from ._keys import ApiKeys
from ._worker_auth import granted

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <key>` (what the SDK sends)"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "The key in `x-api-key`"},
}
"""How a caller authenticates, for the OpenAPI document (`_app.py` publishes them; `workspace` checks them)."""


async def runtime(request: Request) -> Runtime:
    """Async, so FastAPI does not run it on a worker thread (a thread hop on every request)."""
    rt: Runtime = request.app.state.runtime
    return rt


async def workspace(request: Request) -> str:
    """The workspace of the caller's key (Bearer or x-api-key); 401 without a known key.

    It reads the two headers itself rather than through FastAPI's security dependencies: one dependency instead
    of three on every request (see `SECURITY_SCHEMES` for the OpenAPI side)."""
    headers = request.headers
    keys: ApiKeys = request.app.state.keys
    return caller_workspace(keys, headers.get("authorization", ""), headers.get("x-api-key", ""))


def caller_workspace(keys: ApiKeys, authorization: str, api_key: str) -> str:
    """The workspace of the key in `Authorization: Bearer <key>` or else `x-api-key`; `ApiError(401)` otherwise."""
    scheme, _, credentials = authorization.partition(" ")
    key = credentials.strip() if scheme.lower() == "bearer" else ""
    key = key or api_key
    if not key:
        raise ApiError(401, "missing API key: send `Authorization: Bearer <key>` or `x-api-key`", code="missing_key")
    found = keys.workspace_for(key)
    if found is None:
        grant = granted(key)  # a worker's credential, decided by `WorkerCredentials` for this request
        if grant is None:
            raise ApiError(401, "invalid API key", code="invalid_key")
        if grant.refusal is not None:
            raise grant.refusal
        found = grant.caller.workspace
    _log_context.workspace.set(found)  # what this request's log lines are about
    return found


Runtime_ = Annotated[Runtime, Depends(runtime)]
Workspace = Annotated[str, Depends(workspace)]


def list_param(request: Request, name: str) -> list[str] | None:
    """An array query parameter in the SDK's bracket format (`types[]=a&types[]=b`); plain `types=a` too."""
    values = request.query_params.getlist(f"{name}[]") or request.query_params.getlist(name)
    return values or None


def time_param(request: Request, name: str) -> str | None:
    """`created_at[gte]=<RFC 3339>` as the runtime compares it (UTC, microseconds, Z); 400 when unparseable."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace(" ", "+"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return rfc3339(value)
    except (ValueError, OverflowError) as exc:
        raise ApiError(400, f"{name} must be an RFC 3339 timestamp", code="invalid_timestamp") from exc
