"""Run an ASGI app on 127.0.0.1 with a random port, in a background thread, for provider fakes."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.types import ASGIApp


@dataclass
class RecordedRequest:
    """One request a fake received, as the tests assert on it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeReply:
    """What the fake answers next: text, tool calls, or an HTTP error.

    `tool_calls` are `(id, name, input)`; an `error_status` makes the reply an error response with the
    provider's error envelope (`error_type`, `error_message`).
    """

    text: str | None = None
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    error_status: int | None = None
    error_type: str = "api_error"
    error_message: str = "error"


def text_reply(text: str) -> FakeReply:
    return FakeReply(text=text)


def tool_call_reply(call_id: str, name: str, args: dict[str, Any], text: str | None = None) -> FakeReply:
    return FakeReply(text=text, tool_calls=[(call_id, name, args)])


def error_reply(status: int, error_type: str, message: str) -> FakeReply:
    return FakeReply(error_status=status, error_type=error_type, error_message=message)


def dumps(value: Any) -> str:
    """Compact JSON, as the providers send it."""
    return json.dumps(value, separators=(",", ":"))


class ScriptedFake:
    """What every provider fake shares: replies queued by the test, every request recorded for assertions."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.replies: deque[FakeReply] = deque()
        self._seq = 0

    def reset(self) -> None:
        self.requests.clear()
        self.replies.clear()

    def queue(self, *replies: FakeReply) -> None:
        self.replies.extend(replies)

    async def take(self, request: Request) -> tuple[dict[str, Any], FakeReply, int]:
        """Record `request`; its body, the reply to give (default: text "ok") and its 1-based number."""
        body = await request.json()
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
        )
        self._seq += 1
        return body, self.replies.popleft() if self.replies else FakeReply(text="ok"), self._seq


class LoopbackServer:
    """uvicorn serving `app` on a random loopback port until `stop()`."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake HTTP server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
