"""Fixtures for the toolset tests: a real Runtime with a real Toolset (real bwrap when available, or the fallback),
sessions in real environments, and real loopback HTTP servers.

Tests of the bwrap path skip when bwrap is not available, and FAIL instead when LOOPHOST_REQUIRE_BWRAP=1 (CI sets
it once scripts/fetch-bwrap.sh has run), so a machine that silently lost its sandbox cannot pass them.
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loophost import wire
from loophost.runtime import Runtime, ToolContext, ToolOutput
from loophost.runtime.toolset import Toolset, find_bwrap

WS = "ws_tools"
BWRAP = find_bwrap()


def need_bwrap() -> None:
    if BWRAP is None:
        if os.environ.get("LOOPHOST_REQUIRE_BWRAP") == "1":
            pytest.fail("LOOPHOST_REQUIRE_BWRAP=1 but bwrap is not available (run scripts/fetch-bwrap.sh)")
        pytest.skip("bwrap is not available (scripts/fetch-bwrap.sh, LOOPHOST_BWRAP)")


@pytest.fixture(params=["bwrap", "fallback"])
def mode(request: pytest.FixtureRequest) -> str:
    if request.param == "bwrap":
        need_bwrap()
    return str(request.param)


@dataclass
class Sandbox:
    rt: Runtime
    toolset: Toolset
    session: wire.Session
    ctx: ToolContext

    async def call(self, tool: str, **tool_input: Any) -> ToolOutput:
        return await self.toolset.tools()[tool].run(self.ctx, tool_input)

    async def bash(self, command: str, **extra: Any) -> ToolOutput:
        return await self.call("bash", command=command, **extra)

    def host(self, sandbox_path: str) -> Path:
        return self.toolset.workspaces.root / self.session.id / "fs" / sandbox_path.lstrip("/")

    def shell_pid(self) -> int | None:
        state = self.toolset._sessions.get(self.session.id)
        return state.shell.pid if state is not None and state.shell is not None else None


Factory = Callable[..., Any]


@pytest.fixture
async def sandbox_factory(tmp_path: Path, mode: str) -> AsyncIterator[Factory]:
    """`await make(networking=..., tools=..., resources=..., files=...)` -> Sandbox; everything closed after."""
    async with AsyncExitStack() as stack:
        counter = iter(range(1000))

        async def make(
            *,
            networking: dict[str, Any] | None = None,
            tools: list[dict[str, Any]] | None = None,
            resources: list[dict[str, Any]] | None = None,
            uploads: dict[str, bytes] | None = None,
            toolset_options: dict[str, Any] | None = None,
            prepare: Callable[[Runtime], Awaitable[dict[str, Any]]] | None = None,
        ) -> Sandbox:
            """`prepare(runtime)`: runs before the session is created, returns more session create fields."""
            n = next(counter)
            toolset = Toolset(tmp_path / f"ws{n}", use_bwrap=mode == "bwrap", **(toolset_options or {}))
            rt = await stack.enter_async_context(Runtime.from_url(tmp_path / f"rt{n}.db", toolset=toolset))
            agent = await rt.create_agent(
                WS,
                wire.AgentCreateParams.model_validate(
                    {"name": "a", "model": "scripted", "tools": tools or [{"type": "agent_toolset_20260401"}]}
                ),
            )
            config: dict[str, Any] = {"type": "cloud", "networking": networking or {"type": "unrestricted"}}
            env = await rt.create_environment(
                WS, wire.EnvironmentCreateParams.model_validate({"name": f"env{n}", "config": config})
            )
            ids = {}
            for name, content in (uploads or {}).items():
                ids[name] = (await rt.upload_file(WS, name, content)).id
            resolved = [{**r, "file_id": ids.get(r["file_id"], r["file_id"])} for r in resources or []]
            extra = await prepare(rt) if prepare is not None else {}
            session = await rt.start_session(
                WS,
                wire.SessionCreateParams.model_validate(
                    {"agent": agent.id, "environment_id": env.id, "resources": resolved, **extra}
                ),
            )
            return Sandbox(rt, toolset, session, ToolContext(WS, session.id, env.id, f"sevt_{n}"))

        yield make


@pytest.fixture
async def box(sandbox_factory: Factory) -> Sandbox:
    sandbox: Sandbox = await sandbox_factory()
    return sandbox


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str, bytes, dict[str, str]]] = {}

    def do_GET(self) -> None:
        status, ctype, body, headers = self.routes.get(self.path, (404, "text/plain", b"not found", {}))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class WebServer:
    port: int
    routes: dict[str, tuple[int, str, bytes, dict[str, str]]]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def web() -> Iterator[WebServer]:
    """A real loopback HTTP server; tests add routes (path -> status, content type, body, headers)."""
    routes: dict[str, tuple[int, str, bytes, dict[str, str]]] = {}
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebServer(server.server_address[1], routes)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
