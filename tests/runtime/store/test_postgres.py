"""What the PostgreSQL store promises beyond the contract suite: several stores (nodes) on one database.

Each "node" here is a `PostgresStore` with its own connection pool, on a real server (tests/_postgres.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from loophost.runtime import InvalidRequest
from loophost.runtime._errors import StaleWrite
from loophost.runtime.store import (
    DatabaseInUse,
    EnvironmentRow,
    EventQuery,
    ListQuery,
    PostgresStore,
    SessionChange,
    StoredEvent,
    open_store,
)
from loophost.runtime.store._postgres_schema import SCHEMA_VERSION

from ..._postgres import PostgresServer
from ._rows import event, session_row


@pytest.fixture
async def nodes(postgres_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    first, second = PostgresStore(postgres_url, pool_max_size=4), PostgresStore(postgres_url, pool_max_size=4)
    await asyncio.gather(first.open(), second.open())
    try:
        yield first, second
    finally:
        await asyncio.gather(first.close(), second.close())


async def test_seqs_are_gap_free_under_concurrent_writers_on_two_nodes(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = nodes
    await first.insert_session(session_row())
    heard: dict[str, list[StoredEvent]] = {"first": [], "second": []}
    first.add_commit_listener(heard["first"].extend)
    second.add_commit_listener(heard["second"].extend)
    answered: dict[str, list[int]] = {"first": [], "second": []}

    async def writer(node: PostgresStore, name: str, worker: int) -> None:
        for i in range(15):
            change = SessionChange(status="running") if i % 4 == 0 else None  # some bump the revision too
            _, stored = await node.commit_session(
                "sesn_1",
                expected_revision=None,
                change=change,
                events=[event(f"{name}_{worker}_{i}_a"), event(f"{name}_{worker}_{i}_b")],
            )
            answered[name].extend(e.seq for e in stored)

    await asyncio.gather(
        *(writer(node, name, w) for w in range(6) for node, name in ((first, "first"), (second, "second")))
    )

    log = await second.list_events("sesn_1", EventQuery(limit=10_000))
    assert [e.seq for e in log] == list(range(1, 2 * 2 * 6 * 15 + 1))
    assert await first.last_seq("sesn_1") == len(log)
    assert sorted(answered["first"] + answered["second"]) == [e.seq for e in log]
    for name in ("first", "second"):
        # each node hears its own commits, in commit order, with the seqs the log has
        assert [e.seq for e in heard[name]] == sorted(answered[name])
        assert {e.id: e.seq for e in heard[name]}.items() <= {e.id: e.seq for e in log}.items()
    for e in log[::2]:  # a commit's two events are adjacent
        assert e.id.endswith("_a") and log[e.seq].id == e.id[:-1] + "b"
    row = await first.get_session("ws", "sesn_1")
    assert row is not None and row.revision == 1 + 2 * 6 * 4


async def test_a_compare_and_set_lost_to_another_node_writes_nothing(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = nodes
    await first.insert_session(session_row())
    results = await asyncio.gather(
        *(
            node.commit_session(
                "sesn_1", expected_revision=1, change=SessionChange(status=f"s{i}"), events=[event(f"n{i}")]
            )
            for i, node in enumerate((first, second, first, second))
        ),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1 and all(isinstance(r, StaleWrite) for r in results if r not in won)
    log = await first.list_events("sesn_1", EventQuery())
    assert [e.seq for e in log] == [1]
    row = await second.get_session("ws", "sesn_1")
    assert row is not None and row.revision == 2 and row.last_seq == 1 and row.status == f"s{results.index(won[0])}"


async def test_a_session_deleted_on_one_node_refuses_the_other_nodes_commits(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = nodes
    await first.insert_session(session_row(), [event(1)])

    async def append_until_gone() -> str:
        appended = 0
        while True:
            try:
                await second.commit_session("sesn_1", expected_revision=None, events=[event(f"late_{appended}")])
            except StaleWrite as exc:
                return exc.code
            appended += 1

    appender = asyncio.create_task(append_until_gone())
    await asyncio.sleep(0.05)
    assert await first.delete_session("ws", "sesn_1")
    assert await appender == "session_gone"
    assert await second.list_events("sesn_1", EventQuery()) == []  # no commit landed after the delete
    assert await second.last_seq("sesn_1") is None


async def test_two_nodes_starting_at_once_migrate_once(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        await stores[0].insert_session(session_row())
        assert await stores[3].get_session("ws", "sesn_1") is not None
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute("SELECT version FROM loophost_schema")
        assert await cur.fetchall() == [(SCHEMA_VERSION,)]


async def test_a_database_from_a_newer_loophost_is_refused(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    await store.close()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("UPDATE loophost_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer than this loophost"):
        await PostgresStore(postgres_url).open()


async def test_stores_opened_by_url_share_a_database(postgres_url: str) -> None:
    first, second = open_store(postgres_url), open_store(postgres_url)
    assert isinstance(first, PostgresStore) and isinstance(second, PostgresStore)
    await first.open()
    try:
        await second.open()  # several nodes on one database: sessions are leased to one of them at a time
        await first.insert_session(session_row())
        assert await second.last_seq("sesn_1") == 0
        assert first.cluster.node_id != second.cluster.node_id
        await second.close()
    finally:
        await first.close()


async def test_a_single_node_store_refuses_a_second_until_it_closes(postgres_url: str) -> None:
    first = PostgresStore(postgres_url, single_node=True)
    await first.open()
    try:
        with pytest.raises(DatabaseInUse, match="another loophost node"):
            await PostgresStore(postgres_url, single_node=True).open()
    finally:
        await first.close()
    again = PostgresStore(postgres_url, single_node=True)
    await again.open()
    await again.close()


async def test_keyset_pages_sort_by_bytes_whatever_the_database_locale(postgres_server: PostgresServer) -> None:
    store = PostgresStore(postgres_server.create_database(icu_locale="en-US"))  # en-US sorts "a" before "B"
    await store.open()
    try:
        for session_id in ("sesn_a", "sesn_B", "sesn_C"):
            await store.insert_session(session_row(session_id))
        page = await store.list_sessions("ws", ListQuery(limit=2))
        rest = await store.list_sessions("ws", ListQuery(after=(page[-1].created_at, page[-1].id)))
        assert [r.id for r in page + rest] == ["sesn_B", "sesn_C", "sesn_a"]  # as on SQLite
    finally:
        await store.close()


def test_pool_sizes_come_from_the_url_and_libpq_never_sees_them() -> None:
    store = PostgresStore("postgresql://u@h:5/db?sslmode=disable&pool_max_size=32&pool_min_size=3")
    assert store.url == "postgresql://u@h:5/db?sslmode=disable"
    assert (store._db.min_size, store._db.max_size) == (3, 32)
    with pytest.raises(ValueError, match="integers"):
        PostgresStore("postgresql://u@h/db?pool_max_size=many")


async def test_a_closed_store_refuses_calls(postgres_url: str) -> None:
    from loophost.runtime import StoreClosed

    store = PostgresStore(postgres_url)
    await store.open()
    await store.close()
    with pytest.raises(StoreClosed):
        await store.get_session("ws", "sesn_1")


async def test_nul_characters_find_nothing_and_cannot_be_stored(postgres_url: str) -> None:
    """PostgreSQL text holds no NUL (SQLite's does): an id with one names nothing, a name with one is refused."""
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        await store.insert_session(session_row(), [event(1)])
        assert await store.get_session("ws", "sesn_1\x00") is None
        assert await store.list_sessions("ws", ListQuery(filters={"agent_id": "a\x00"})) == []
        assert [e.id for e in await store.get_events("sesn_1", ["sevt_1", "sevt_\x00"])] == ["sevt_1"]
        assert not await store.delete_session("ws", "sesn_1\x00")
        assert not await store.delete_environment("ws", "env_\x00")
        with pytest.raises(InvalidRequest):
            await store.insert_environment(EnvironmentRow("ws", "env_1", "bad\x00name", "2026-01-01", None, "{}"))
        assert await store.get_environment("ws", "env_1") is None
    finally:
        await store.close()
