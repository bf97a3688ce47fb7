"""A runtime on PostgreSQL whose database connections fail under it: every connection of the database dropped
(`pg_terminate_backend`) during a model request and during a tool; the server itself down, then back.

Nothing is lost and nothing runs twice: reads are retried on another connection, a write's transaction is
started again, and a turn cut off by a failed write resumes from what is committed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from loophost.runtime import Runtime, RuntimeConfig, ToolContext, ToolOutput, Unavailable

from .._postgres import PostgresServer
from .conftest import WS, make_session, user_message

TOOLS = [{"type": "agent_toolset_20260401"}]


class SlowBash:
    """`bash` that logs each execution (its tool-use id) first, then sleeps `sleep:MS` milliseconds."""

    name = "bash"
    description = "Runs a command (test double)."
    input_schema: dict[str, Any] = {"type": "object", "properties": {"command": {"type": "string"}}}

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        command = str(tool_input.get("command"))
        os.write(self._fd, f"{ctx.tool_use_id}\n".encode())
        if command.startswith("sleep:"):
            await asyncio.sleep(int(command.split()[0].removeprefix("sleep:")) / 1000)
        return ToolOutput(f"ran {command}")

    def runs(self) -> list[str]:
        return self.path.read_text().split() if self.path.exists() else []


async def _drop_connections(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def _until(check: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def test_connections_dropped_during_a_model_request_and_a_tool_lose_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    bash = SlowBash(tmp_path / "runs")
    config = RuntimeConfig(lease_ttl=3.0)
    async with Runtime.from_url(postgres_url, config=config, builtin_tools={"bash": bash}) as rt:
        session = await make_session(rt, tools=TOOLS)
        sent = await rt.send_events(
            WS, session.id, [user_message('sleep 800\ncall bash {"command": "sleep:800 slow"}\nthen\ndone')]
        )
        await asyncio.sleep(0.3)  # the first model request sleeps
        assert await _drop_connections(postgres_url) > 0
        await _until(lambda: _ran(bash))  # the tool runs
        assert await _drop_connections(postgres_url) > 0
        await _until(lambda: _idle(rt, session.id))
        log = (await rt.list_events(WS, session.id)).data
    assert sent[0].id in [e.id for e in log]
    types = [e.type for e in log]
    assert types.count("agent.tool_use") == types.count("agent.tool_result") == 1
    assert len(bash.runs()) == 1 and bash.runs()[0] == next(e.id for e in log if e.type == "agent.tool_use")
    assert '"is_error":true' not in next(e.body for e in log if e.type == "agent.tool_result")
    assert types[-1] == "session.status_idle" and types.count("agent.message") == 1


async def _ran(bash: SlowBash) -> bool:
    return bool(bash.runs())


async def _idle(rt: Runtime, session_id: str) -> bool:
    state = await rt.status(WS, session_id)
    return state.status == "idle" and state.queued == 0 and not rt.workers.is_active(session_id)


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own, which it halts and restarts."""
    server = PostgresServer.start()
    yield server
    server.stop()


async def test_a_database_down_is_unavailable_and_the_runtime_recovers_when_it_is_back(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    url = own_postgres.create_database()
    bash = SlowBash(tmp_path / "runs")
    config = RuntimeConfig(lease_ttl=1.0)
    async with Runtime.from_url(url, config=config, builtin_tools={"bash": bash}) as rt:
        session = await make_session(rt, tools=TOOLS)
        await rt.send_events(WS, session.id, [user_message('call bash {"command": "sleep:1000 during"}\nthen\ndone')])
        await _until(lambda: _ran(bash))
        await asyncio.to_thread(own_postgres.halt)  # down while the tool runs
        with pytest.raises(Unavailable):
            await rt.status(WS, session.id)
        with pytest.raises(Unavailable):
            await rt.send_events(WS, session.id, [user_message("while down")])
        await asyncio.sleep(1.5)  # the tool ended meanwhile; its result cannot be written; the lease lapses
        await asyncio.to_thread(own_postgres.restart)
        await _until(lambda: _idle_when_up(rt, session.id), timeout=30)
        after = await rt.send_events(WS, session.id, [user_message("after the restart")])
        await _until(lambda: _idle_when_up(rt, session.id))
        log = (await rt.list_events(WS, session.id)).data
    assert after[0].id in [e.id for e in log]
    types = [e.type for e in log]
    assert types.count("agent.tool_use") == types.count("agent.tool_result") == 1  # answered, once
    assert len(bash.runs()) == 1  # never run again
    assert log[-1].type == "session.status_idle"
    assert [e.body for e in log if e.type == "agent.message"][-1].find("echo: after the restart") >= 0


async def _idle_when_up(rt: Runtime, session_id: str) -> bool:
    try:
        return await _idle(rt, session_id)
    except Unavailable:
        return False
