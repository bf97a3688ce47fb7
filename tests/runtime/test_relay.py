"""Two runtimes (two nodes) in one process on one PostgreSQL database: what one writes reaches the other's streams
(`_relay.py`), and any node serves any session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from loophost.runtime import Runtime, RuntimeConfig, StoredEvent

from .conftest import WS, make_session, user_message


@pytest.fixture
async def nodes(postgres_url: str) -> AsyncIterator[tuple[Runtime, Runtime]]:
    config = RuntimeConfig(lease_ttl=2.0)
    async with Runtime.from_url(postgres_url, config=config) as a, Runtime.from_url(postgres_url, config=config) as b:
        yield a, b


async def _read_until(stream: AsyncIterator[object], last: str) -> list[StoredEvent]:
    out: list[StoredEvent] = []
    async with asyncio.timeout(20):
        async for item in stream:
            if isinstance(item, StoredEvent):
                out.append(item)
                if item.type == last:
                    return out
    return out


async def test_every_turn_written_on_one_node_reaches_a_stream_on_the_other(nodes: tuple[Runtime, Runtime]) -> None:
    a, b = nodes
    session = await make_session(a)
    stream = await b.open_stream(WS, session.id, after_seq=0)
    try:
        await a.send_events(WS, session.id, [user_message("first")])
        first = await _read_until(stream, "session.status_idle")
        await b.send_events(WS, session.id, [user_message("second")])  # either node takes input
        second = await _read_until(stream, "session.status_idle")
    finally:
        await stream.aclose()
    log = (await a.list_events(WS, session.id)).data
    assert [e.id for e in first + second] == [e.id for e in log]  # once each, in order
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    texts = [e.body for e in log if e.type == "agent.message"]
    assert len(texts) == 2 and "echo: first" in texts[0] and "echo: second" in texts[1]


async def test_a_session_deleted_on_one_node_ends_its_streams_on_the_other(nodes: tuple[Runtime, Runtime]) -> None:
    a, b = nodes
    session = await make_session(a)
    await a.send_events(WS, session.id, [user_message("hello")])
    stream = await b.open_stream(WS, session.id, after_seq=0)
    try:
        await _read_until(stream, "session.status_idle")
        async with asyncio.timeout(20):
            while a.workers.is_active(session.id) or b.workers.is_active(session.id):
                await asyncio.sleep(0.01)
        await a.delete_session(WS, session.id)
        rest = await _read_until(stream, "session.deleted")
    finally:
        await stream.aclose()
    assert [e.type for e in rest] == ["session.deleted"]


async def _drop_listeners(url: str) -> int:
    """Terminate the notice connections (the ones that LISTEN) of every node."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'"
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def test_a_stream_catches_up_from_the_log_when_its_nodes_notices_were_missed(
    nodes: tuple[Runtime, Runtime], postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Node B's notice connection is cut again and again while node A runs turns: whatever B missed while it was
    reconnecting reaches B's stream from the log, once each and in order."""
    a, b = nodes
    session = await make_session(a)
    stream = await b.open_stream(WS, session.id, after_seq=0)
    stop = asyncio.Event()
    dropped = 0

    async def cut() -> None:
        nonlocal dropped
        while not stop.is_set():
            dropped += await _drop_listeners(postgres_url)
            await asyncio.sleep(0.005)

    received: list[StoredEvent] = []
    cutter = asyncio.create_task(cut())
    try:
        for i in range(8):
            await a.send_events(WS, session.id, [user_message(f"turn {i}")])
            received += await _read_until(stream, "session.status_idle")
    finally:
        stop.set()
        await cutter
        await stream.aclose()
    assert dropped > 0 and "the notice connection dropped" in caplog.text
    log = (await a.list_events(WS, session.id)).data
    assert [e.id for e in received] == [e.id for e in log]  # nothing missed, nothing twice, in order
    assert sum(e.type == "agent.message" for e in log) == 8
