"""A live session survives its server being SIGKILLed and restarted on the same database: it reconnects,
completes, and runs each tool-use id exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

import loophost
from tests.server.conftest import KEY_A, ServerProcess, start_server, stop_server

pytestmark = pytest.mark.timeout(90)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(database: Path, port: int) -> ServerProcess:
    command = [
        sys.executable,
        "-c",
        "from loophost.cli import main; main()",
        "serve",
        "--port",
        str(port),
        "--database",
        str(database),
        "--heartbeat",
        "0.5",
    ]
    return start_server(database, command=command, keys=f"{KEY_A}:ws_a")


def _kill(server: ServerProcess) -> None:
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


async def test_sigkill_while_a_custom_tool_runs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database, port = tmp_path / "server.db", _free_port()
    server = _serve(database, port)
    started, release = threading.Event(), threading.Event()
    executions: Counter[str] = Counter()

    @loophost.tool
    def wait_for_release(tag: str, ctx: loophost.ToolCallContext) -> str:
        """Blocks until the test releases it."""
        executions[ctx.tool_use_id] += 1
        started.set()
        release.wait(timeout=60)
        return f"released {tag}"

    provider = loophost.ClaudeManagedAgents(api_key=KEY_A, base_url=server.url, max_retries=1)
    try:
        async with loophost.start(
            provider,
            model="scripted",
            handler=[wait_for_release],
            prompt='call wait_for_release {"tag": "a"}\ncall wait_for_release {"tag": "b"}',
        ) as live:
            assert await asyncio.to_thread(started.wait, 30)
            _kill(server)  # the tool is still running: its result cannot be delivered now
            release.set()
            await asyncio.sleep(1.0)  # the client fails to deliver, and backs off
            server = _serve(database, port)
            result = await asyncio.wait_for(live.next_result(), timeout=45)
    finally:
        release.set()
        stop_server(server)
    assert any("reconnecting" in r.getMessage() for r in caplog.records)
    assert result.terminal == "end_turn"
    assert result.text == "wait_for_release: released a\nwait_for_release: released b"
    assert len(executions) == 2 and set(executions.values()) == {1}  # each tool-use id ran exactly once
    answered = [e["custom_tool_use_id"] for e in result.events if e["type"] == "user.custom_tool_result"]
    assert sorted(answered) == sorted(executions)


async def test_sigkill_in_the_middle_of_a_model_turn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database, port = tmp_path / "server.db", _free_port()
    server = _serve(database, port)
    executions: Counter[str] = Counter()

    @loophost.tool
    def record(tag: str, ctx: loophost.ToolCallContext) -> str:
        """Records one execution."""
        executions[ctx.tool_use_id] += 1
        return f"recorded {tag}"

    provider = loophost.ClaudeManagedAgents(api_key=KEY_A, base_url=server.url, max_retries=1)
    seen: list[str] = []
    try:
        async with loophost.start(
            provider,
            model="scripted",
            handler=[record],
            on_event=lambda e: seen.append(e["type"]),
            prompt='sleep 1500\ncall record {"tag": "x"}',
        ) as live:
            while "session.status_running" not in seen:
                await asyncio.sleep(0.05)
            _kill(server)  # the model request is sleeping: the turn is cut in the middle
            server = _serve(database, port)  # the runtime resumes the turn from its checkpoint
            result = await asyncio.wait_for(live.next_result(), timeout=45)
    finally:
        stop_server(server)
    assert any("reconnecting" in r.getMessage() for r in caplog.records)
    assert result.terminal == "end_turn"
    assert result.text == "record: recorded x"
    assert list(executions.values()) == [1]
    ids = [e["id"] for e in result.events]
    assert len(ids) == len(set(ids))  # nothing delivered twice across the reconnect
