"""A real MCP server for the tests: the `mcp` SDK's FastMCP over Streamable HTTP, served by uvicorn on a loopback
port in a thread, behind bearer auth (`reject_status`, 401 by default, for a token it does not accept: `tokens` is
a set, or an OAuth issuer whose tokens expire, `_oauth_server.py`). It records every tool call it runs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.fastmcp import FastMCP


@dataclass
class McpTestServer:
    name: str
    tokens: Container[str]
    reject_status: int = 401
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rejected: int = 0
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self, tools: dict[str, Callable[..., Any]] | None = None) -> McpTestServer:
        mcp = FastMCP(self.name, log_level="WARNING")
        recorded = self.calls

        def add(a: int, b: int) -> int:
            """Add two integers."""
            recorded.append(("add", {"a": a, "b": b}))
            return a + b

        def echo(text: str) -> str:
            """Echo the text back, prefixed with the server's name."""
            recorded.append(("echo", {"text": text}))
            return f"{self.name} says {text}"

        def hidden(text: str) -> str:
            """A tool the tests disable in the toolset config."""
            recorded.append(("hidden", {"text": text}))
            return text

        for function in [add, echo, hidden, *(tools or {}).values()]:
            mcp.add_tool(function)
        inner = mcp.streamable_http_app()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                authorization = dict(scope["headers"]).get(b"authorization", b"").decode()
                if authorization.removeprefix("Bearer ") not in self.tokens:
                    self.rejected += 1
                    start = {"type": "http.response.start", "status": self.reject_status}
                    await send({**start, "headers": [(b"content-type", b"text/plain")]})
                    await send({"type": "http.response.body", "body": b"unauthorized"})
                    return
            await inner(scope, receive, send)

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
        )
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the MCP test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None
