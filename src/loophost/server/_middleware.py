"""Pure-ASGI middleware: a request id on every response, request-body limits enforced before reading, and the
request's span (`_tracing.py`)."""

from __future__ import annotations

import json
import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..runtime import _log_context
from ..runtime._ids import new_id
from ._settings import ServerSettings
from ._tracing import RequestSpan, request_span

log = logging.getLogger("loophost.server")
_SESSION = re.compile(r"/v1/sessions/(sesn_[0-9a-f]+)")


class RequestContext:
    """Gives each request an id (`request-id` header, `request_id` in error envelopes) and refuses bodies over
    the limit with 413: by Content-Length up front, and by counting when the body is streamed."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id
        headers = dict(scope.get("headers") or [])
        _log_context.request_id.set(request_id)
        if (session := _SESSION.match(scope.get("path", ""))) is not None:
            _log_context.session_id.set(session[1])
        with request_span(scope, headers, request_id) as span:
            await self._serve(scope, receive, send, request_id, headers, span)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        headers: dict[bytes, bytes],
        span: RequestSpan,
    ) -> None:
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        limit = (
            self.settings.max_upload_bytes
            if content_type.startswith("multipart/")
            else self.settings.max_json_body_bytes
        )
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, request_id, limit)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                span.status(message["status"])
                log.debug("%s %s answered %d", scope.get("method"), scope.get("path"), message["status"])
                headers = list(message.get("headers") or [])
                if not any(name.lower() == b"request-id" for name, _ in headers):
                    headers.append((b"request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge as exc:
            if not started:
                await _too_large(send, request_id, exc.limit)
        except Exception:
            # A bug of ours. Answer it here, inside the ASGI call, so the connection stays usable
            # (an exception raised out of the app would reset a keep-alive connection).
            log.exception("unexpected error answering %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _error(send, request_id, 500, "api_error", "internal server error", "internal_error")


class _BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit


async def _too_large(send: Send, request_id: str, limit: int) -> None:
    message = f"request body over the limit of {limit} bytes"
    await _error(send, request_id, 413, "invalid_request_error", message, "body_too_large", limit=limit)


async def _error(
    send: Send, request_id: str, status: int, error_type: str, message: str, code: str, **details: object
) -> None:
    body = json.dumps(
        {
            "type": "error",
            "error": {"type": error_type, "message": message, "details": {"error_code": code, **details}},
            "request_id": request_id,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
