"""A loophost server on a free loopback port, run as a task this process owns (used by `loophost demo`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn

from ..runtime import DEFAULT_WORKSPACE, Runtime
from ..server import ApiKeys, HttpProtocol, ServerSettings, create_app, key_hash, new_key


@dataclass(frozen=True, slots=True)
class BackgroundServer:
    url: str
    api_key: str


@asynccontextmanager
async def background_server(database: str) -> AsyncIterator[BackgroundServer]:
    """Serve `database` until the block ends; the server task is cancelled-by-signal and awaited on exit."""
    runtime = Runtime.from_url(database)
    await runtime.open()
    key = new_key()
    app = create_app(
        runtime,
        keys=ApiKeys({}).with_key(key_hash(key), DEFAULT_WORKSPACE),
        settings=ServerSettings(heartbeat_interval=15.0),
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, http=HttpProtocol, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve(), name="loophost-demo-server")
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("the background server did not start")
            await asyncio.sleep(0.02)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield BackgroundServer(f"http://{host}:{port}", key)
    finally:
        app.state.closing.set()
        server.should_exit = True
        await task
        await runtime.close()
