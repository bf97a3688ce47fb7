"""`POST /v1/sessions/{session_id}/events`, the request every turn makes, served as plain ASGI.

Why not a FastAPI route: profiled on echo turns over HTTP, FastAPI's per-request machinery on this route (route
matching, dependency solving, header and body parameters, the response model plumbing) cost more CPU than the
runtime's own work of accepting the events, and every turn pays it. This endpoint does what the route needs and
nothing else: the caller's workspace from its key, the body (under the `RequestContext` limit), the events
validated from the raw JSON in one pass, `Runtime.send_events`, and the echo serialized once. Its answers are the
ones a FastAPI route gives (the same error envelopes, statuses and `request-id`), which the server tests check
through the official SDK. Every other request goes to the FastAPI app. The route's OpenAPI entry is declared in
`routes/events.py` (`OPENAPI_ONLY`).
"""

from __future__ import annotations

import re

import pydantic
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import wire
from ..runtime import Runtime, RuntimeFailure
from ._deps import caller_workspace
from ._errors import ApiError, error_response, failure_response, validation_message
from ._keys import ApiKeys
from ._middleware import RequestContext
from ._responses import json_response
from ._settings import ServerSettings

PATH = re.compile(r"/v1/sessions/([^/]+)/events")
ROUTE = "/v1/sessions/{session_id}/events"


class SendEventsRoute:
    """ASGI: `POST /v1/sessions/{id}/events` to `SendEventsEndpoint` (inside its own `RequestContext`), anything
    else to `app`."""

    def __init__(self, app: ASGIApp, runtime: Runtime, keys: ApiKeys, settings: ServerSettings) -> None:
        self.app = app
        self.endpoint = RequestContext(SendEventsEndpoint(runtime, keys), settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and PATH.fullmatch(scope["path"]):
            scope["loophost.route"] = ROUTE  # the request span's name (no FastAPI route is matched)
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class SendEventsEndpoint:
    """Accept client events (validated all-or-nothing). The echo carries the id each event has in list and
    stream, so a client can dedupe; it is serialized as stored (unset optional fields left out)."""

    def __init__(self, runtime: Runtime, keys: ApiKeys) -> None:
        self.runtime = runtime
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id: str | None = scope.get("state", {}).get("request_id")
        path: str = scope["path"]
        match = PATH.fullmatch(path)
        assert match is not None  # routed here by SendEventsRoute
        headers = Headers(scope=scope)
        response: Response
        try:
            workspace = caller_workspace(self.keys, headers.get("authorization", ""), headers.get("x-api-key", ""))
            params = _params(await _body(receive))
            echoes = await self.runtime.send_events(
                workspace, match[1], params.events, idempotency_key=headers.get("idempotency-key") or None
            )
        except (ApiError, RuntimeFailure) as exc:
            response = failure_response(request_id, exc, "POST", path)
        except pydantic.ValidationError as exc:
            errors = exc.errors(include_url=False)
            response = error_response(request_id, 400, validation_message(errors), {"error_code": "validation_error"})
        else:
            response = json_response(wire.SendEventsResponse(data=echoes), exclude_unset=True)
        await response(scope, receive, send)


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _params(body: bytes) -> wire.SendEventsParams:
    """The events, validated straight from the JSON (a bodyless POST is `{}`: the missing `events` is named)."""
    return wire.SendEventsParams.model_validate_json(body if body.strip() else b"{}")
