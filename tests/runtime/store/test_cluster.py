"""What the PostgreSQL store's cluster promises (store/_cluster.py): one lease holder per session, writes fenced by
the lease on the row itself, a cross-node session lock, and notices that reach the other nodes.

Each "node" is a `PostgresStore` with its own pool and cluster, on a real server (tests/_postgres.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import psycopg
import pytest

from loophost.runtime._errors import LeaseLost, StaleWrite
from loophost.runtime.store import EventQuery, Lease, Notice, PostgresStore, SessionChange, StoredEvent

from ._rows import event, session_row

TTL = 0.6


@pytest.fixture
async def nodes(postgres_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    first, second = (PostgresStore(postgres_url, pool_max_size=6, lease_ttl=TTL) for _ in range(2))
    await asyncio.gather(first.open(), second.open())
    try:
        yield first, second
    finally:
        await asyncio.gather(first.close(), second.close())


async def test_one_node_holds_a_lease_until_it_releases_it(nodes: tuple[PostgresStore, PostgresStore]) -> None:
    first, second = nodes
    await first.insert_session(session_row())
    lease = await first.cluster.claim("sesn_1")
    assert isinstance(lease, Lease) and lease.fence.owner == first.cluster.node_id
    assert await second.cluster.claim("sesn_1") == first.cluster.node_id  # the live holder, to be told
    await first.cluster.release(lease)
    taken = await second.cluster.claim("sesn_1")
    assert isinstance(taken, Lease) and taken.fence.epoch == lease.fence.epoch + 1
    assert await first.cluster.claim("sesn_gone") is None


async def test_an_expired_lease_moves_on_and_the_stale_owner_writes_nothing(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = nodes
    await first.insert_session(session_row(), [event(1)])
    stale = await first.cluster.claim("sesn_1")  # nobody renews it: the keeper was not started
    assert isinstance(stale, Lease)
    await asyncio.sleep(TTL + 0.2)
    assert not first.cluster.valid(stale)
    fresh = await second.cluster.claim("sesn_1")
    assert isinstance(fresh, Lease) and fresh.fence.epoch == stale.fence.epoch + 1
    with pytest.raises(LeaseLost):
        await first.commit_session(
            "sesn_1",
            expected_revision=None,
            change=SessionChange(status="running"),
            events=[event(2)],
            fence=stale.fence,
        )
    await second.commit_session("sesn_1", expected_revision=None, events=[event(3)], fence=fresh.fence)
    assert [e.id for e in await first.list_events("sesn_1", EventQuery())] == ["sevt_1", "sevt_3"]
    row = await first.get_session("ws", "sesn_1")
    assert row is not None and row.status == "idle"


async def test_a_fenced_commit_that_waited_for_the_row_is_checked_against_the_lease_as_it_is_then(
    nodes: tuple[PostgresStore, PostgresStore], postgres_url: str
) -> None:
    """The claim of a node that took over commits while the stale owner's write waits for the row's lock: the write
    is re-checked on the row as the claim left it, and lands nowhere."""
    first, _ = nodes
    await first.insert_session(session_row())
    lease = await first.cluster.claim("sesn_1")
    assert isinstance(lease, Lease)
    async with await psycopg.AsyncConnection.connect(postgres_url) as other:
        await other.execute(
            "UPDATE sessions SET lease_owner = 'other', lease_epoch = lease_epoch + 1 WHERE id = 'sesn_1'"
        )  # the row is locked until this transaction commits
        write = asyncio.create_task(
            first.commit_session("sesn_1", expected_revision=None, events=[event(1)], fence=lease.fence)
        )
        await asyncio.sleep(0.2)
        assert not write.done()  # waiting for the row
        await other.commit()
        with pytest.raises(LeaseLost):
            await write
    assert await first.list_events("sesn_1", EventQuery()) == []


async def test_a_hold_serialises_read_modify_write_across_nodes(nodes: tuple[PostgresStore, PostgresStore]) -> None:
    first, second = nodes
    await first.insert_session(session_row(internal='{"n": 0}'))

    async def increment(node: PostgresStore, i: int) -> None:
        async with node.cluster.hold("sesn_1") as held:
            assert held.row is not None
            n = int(held.row.internal.split(":")[1].rstrip("}"))
            await asyncio.sleep(0)  # another task may try meanwhile: it waits for the row
            await held.commit_session(
                expected_revision=held.row.revision,
                change=SessionChange(internal=f'{{"n": {n + 1}}}'),
                events=[event(f"{id(node)}_{i}")],
            )

    await asyncio.gather(*(increment(node, i) for i in range(15) for node in (first, second)))
    row = await first.get_session("ws", "sesn_1")
    assert row is not None and row.internal == '{"n": 30}' and row.revision == 31 and row.last_seq == 30


async def test_a_commit_in_a_hold_ends_it_and_listeners_hear_it_once_committed(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = nodes
    await first.insert_session(session_row())
    heard: list[StoredEvent] = []

    def listener(events: Sequence[StoredEvent]) -> None:
        heard.extend(events)
        committed.append(asyncio.ensure_future(second.last_seq("sesn_1")))  # what another node sees by then

    committed: list[asyncio.Future[int | None]] = []
    first.add_commit_listener(listener)
    async with first.cluster.hold("sesn_1") as held:
        await held.commit_session(expected_revision=None, events=[event(1)])
        assert [e.id for e in heard] == ["sevt_1"]
        with pytest.raises(StaleWrite):  # one commit per hold: the transaction has ended
            await held.commit_session(expected_revision=None, events=[event(2)])
    assert await committed[0] == 1 and await second.last_seq("sesn_1") == 1
    with contextlib.suppress(RuntimeError):
        async with first.cluster.hold("sesn_1"):
            raise RuntimeError("the block failed before its commit")
    async with first.cluster.hold("sesn_1") as held:
        with pytest.raises(StaleWrite):
            await held.commit_session(expected_revision=99, events=[event(3)])
    assert await second.last_seq("sesn_1") == 1 and len(heard) == 1


async def test_the_keeper_renews_leases_and_reports_one_taken_away(
    nodes: tuple[PostgresStore, PostgresStore], postgres_url: str
) -> None:
    first, second = nodes
    await first.insert_session(session_row())
    lost: asyncio.Queue[Lease] = asyncio.Queue()
    await first.cluster.start(lost.put_nowait)
    lease = await first.cluster.claim("sesn_1")
    assert isinstance(lease, Lease)
    await asyncio.sleep(3 * TTL)  # renewed meanwhile, from the keeper's thread
    assert first.cluster.valid(lease)
    assert await second.cluster.claim("sesn_1") == first.cluster.node_id
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
        await other.execute("UPDATE sessions SET lease_owner = 'other', lease_epoch = lease_epoch + 1")
    assert await asyncio.wait_for(lost.get(), timeout=5 * TTL) == lease
    assert not first.cluster.valid(lease)


async def test_notices_bring_commits_and_wake_ups_to_the_other_node(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = nodes
    await first.insert_session(session_row())
    notices = second.cluster.notices()
    received: asyncio.Queue[Notice] = asyncio.Queue()

    async def listen() -> None:
        async for notice in notices:
            received.put_nowait(notice)

    listener = asyncio.create_task(listen())
    try:
        await asyncio.sleep(0.3)  # listening
        await first.commit_session("sesn_1", expected_revision=None, events=[event(1), event(2)])
        await first.cluster.wake_owner("another-node", "sesn_1", True)  # not for `second`: never delivered
        await first.cluster.wake_owner(second.cluster.node_id, "sesn_1", True)
        assert await first.delete_session("ws", "sesn_1")
        got = [await asyncio.wait_for(received.get(), 5) for _ in range(3)]
        assert got == [
            Notice("events", "sesn_1", 2),
            Notice("wake", "sesn_1", interrupt=True),
            Notice("deleted", "sesn_1", 3),  # the seq its session.deleted would have had
        ]
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await notices.aclose()


async def test_a_sweep_finds_sessions_that_want_a_worker_and_have_no_live_owner(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = nodes
    for name in ("free", "owned", "expired", "idle", "mine"):
        await first.insert_session(session_row(f"sesn_{name}", wants_worker=name != "idle"))
    owned, expired = await second.cluster.claim("sesn_owned"), await second.cluster.claim("sesn_expired")
    assert isinstance(owned, Lease) and isinstance(expired, Lease)
    await asyncio.sleep(TTL / 2)
    assert isinstance(await second.cluster.claim("sesn_owned"), Lease)  # renewed: live
    await asyncio.sleep(TTL / 2 + 0.1)
    assert await first.cluster.sweep(10, busy=["sesn_mine"]) == ["sesn_expired", "sesn_free"]
