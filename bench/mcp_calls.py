"""MCP tool calls: the round trip of one call through the runtime against the same call made directly with the `mcp`
client, in the same run, on the same loopback MCP server (FastMCP over Streamable HTTP, bearer auth).

Through the runtime a call is: the model's response committed with `agent.mcp_tool_use`, the ledger's `started`
commit, the call on the session's MCP connection (opened by the first turn, reused), and `agent.mcp_tool_result`
committed. `use_to_result` is the time from the tool-use event to the result event as a live stream receives them;
`turn_extra` is a whole turn that calls the tool (send -> idle) minus an echo turn (send -> idle), the tool's share
of a turn including the second model request that answers the result.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from loophost import wire
from loophost.runtime import Runtime, StoredEvent

from ._registry import Context, benchmark
from ._report import Metric, latency_ms, metric

WS = "bench"
WARM_UP = 3
TOKEN = "bench-mcp-token-0123456789"


@contextlib.contextmanager
def _mcp_server() -> Iterator[str]:
    """A FastMCP server with an `echo` tool on a loopback port, behind bearer auth; yields its URL."""
    import uvicorn
    from mcp.server.fastmcp import FastMCP

    mcp = FastMCP("bench", log_level="WARNING")

    def echo(text: str) -> str:
        """Echo the text."""
        return text

    mcp.add_tool(echo)
    inner = mcp.streamable_http_app()
    # the server logs a client's closing of its GET stream as an error: noise here
    logging.getLogger("mcp.server.streamable_http").setLevel(logging.CRITICAL)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != f"Bearer {TOKEN}".encode():
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await inner(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def _session(rt: Runtime, url: str) -> str:
    vault = await rt.vaults.create_vault(WS, wire.VaultCreateParams(display_name="bench"))
    credential = {"auth": {"type": "static_bearer", "mcp_server_url": url, "token": TOKEN}}
    await rt.vaults.create_credential(WS, vault.id, wire.CredentialCreateParams.model_validate(credential))
    agent = await rt.create_agent(
        WS,
        wire.AgentCreateParams.model_validate(
            {
                "name": "bench-mcp",
                "model": "scripted",
                "mcp_servers": [{"type": "url", "name": "bench", "url": url}],
                "tools": [
                    {
                        "type": "mcp_toolset",
                        "mcp_server_name": "bench",
                        "default_config": {"permission_policy": {"type": "always_allow"}},
                    }
                ],
            }
        ),
    )
    env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="bench-mcp"))
    session = await rt.start_session(
        WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id, vault_ids=[vault.id])
    )
    return session.id


async def _turn(rt: Runtime, session_id: str, text: str) -> tuple[float, float | None]:
    """(send -> idle, tool use -> tool result) in seconds, as a live stream receives the events."""
    message = wire.UserMessageParams.model_validate(
        {"type": "user.message", "content": [{"type": "text", "text": text}]}
    )
    stream = await rt.open_stream(WS, session_id)
    use_at: float | None = None
    round_trip: float | None = None
    try:
        started = time.perf_counter()
        await rt.send_events(WS, session_id, [message])
        async for event in stream:
            if not isinstance(event, StoredEvent):
                continue
            if event.type == "agent.mcp_tool_use":
                use_at = time.perf_counter()
            elif event.type == "agent.mcp_tool_result" and use_at is not None:
                round_trip = time.perf_counter() - use_at
            elif event.type == "session.error":
                raise RuntimeError(f"the MCP call failed: {event.body}")
            elif event.type == "session.status_idle":
                return time.perf_counter() - started, round_trip
    finally:
        await stream.aclose()
    raise RuntimeError("the stream ended before the turn did")


async def _direct(url: str, calls: int) -> list[float]:
    """Seconds per `call_tool` with the `mcp` client itself, on one session (the peer)."""
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    samples: list[float] = []
    async with (
        httpx.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}) as http,
        streamable_http_client(url, http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for index in range(calls + WARM_UP):
            started = time.perf_counter()
            result = await session.call_tool("echo", {"text": "x"})
            elapsed = time.perf_counter() - started
            if result.isError:
                raise RuntimeError("the direct MCP call failed")
            if index >= WARM_UP:
                samples.append(elapsed)
    return samples


@benchmark("mcp.round_trip")
async def round_trip(ctx: Context) -> AsyncIterator[Metric]:
    """An MCP tool call through the runtime (scripted model, always_allow) vs the same call with the `mcp` client."""
    calls = ctx.size(200, 20)
    with _mcp_server() as url:
        direct = latency_ms(await _direct(url, calls))
        async with Runtime.from_url(ctx.fresh_path("mcp")) as rt:
            session_id = await _session(rt, url)
            tool_turns: list[float] = []
            echo_turns: list[float] = []
            use_to_result: list[float] = []
            for index in range(calls + WARM_UP):
                whole, call = await _turn(rt, session_id, 'call echo {"text": "x"}')
                echo, _ = await _turn(rt, session_id, "hello")
                if index >= WARM_UP and call is not None:
                    tool_turns.append(whole)
                    echo_turns.append(echo)
                    use_to_result.append(call)
    ours, turns, echoes = latency_ms(use_to_result), latency_ms(tool_turns), latency_ms(echo_turns)
    yield metric(
        "mcp.round_trip",
        round((ours["p50"] or 0) - (direct["p50"] or 0), 3),
        "ms",
        p50=ours["p50"],
        p99=ours["p99"],
        p_unit="ms (agent.mcp_tool_use -> agent.mcp_tool_result on a live stream)",
        peer="mcp ClientSession.call_tool on the same server, same run",
        peer_p50=direct["p50"],
        peer_p99=direct["p99"],
        turn_p50=turns["p50"],
        turn_p99=turns["p99"],
        echo_turn_p50=echoes["p50"],
        turn_extra_p50=round((turns["p50"] or 0) - (echoes["p50"] or 0), 3),
        turn_unit="ms (send -> idle; turn_extra: a turn calling the tool minus an echo turn, p50s)",
        calls=ours["samples"],
        note="value: runtime round trip p50 minus the direct call's p50 (the ledger's commits, the connection's task)",
    )
