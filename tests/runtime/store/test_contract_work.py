"""The work-queue part of the Store contract (`Store.work`), against every backend (see conftest.STORE_BACKENDS)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from loophost.runtime import Conflict
from loophost.runtime.store import EnvironmentKeyRow, Store, WorkRow

from .conftest import StoreFactory


def ts(second: int) -> str:
    return f"2026-01-01T00:00:{second:02d}.000000Z"


def item(work_id: str, session_id: str, *, created: int = 0, env: str = "env_1", **over: object) -> WorkRow:
    row = WorkRow(
        workspace="ws",
        id=work_id,
        environment_id=env,
        session_id=session_id,
        data_type="session",
        state="queued",
        metadata="{}",
        created_at=ts(created),
        ttl_seconds=30,
    )
    return replace(row, **over)  # type: ignore[arg-type]


async def test_a_session_has_at_most_one_live_item(store: Store) -> None:
    await store.work.insert_work(item("work_1", "sesn_1"))
    with pytest.raises(Conflict) as caught:
        await store.work.insert_work(item("work_2", "sesn_1"))
    assert caught.value.code == "live_work_exists"
    live = await store.work.live_work("sesn_1")
    assert live is not None and live.id == "work_1"
    stopped = replace(live, state="stopped", stopped_at=ts(5), revision=live.revision + 1)
    assert await store.work.update_work(stopped, expected_revision=live.revision)
    assert await store.work.live_work("sesn_1") is None
    await store.work.insert_work(item("work_2", "sesn_1", created=6))  # a new item once the old one stopped
    assert (await store.work.live_work("sesn_1")) == item("work_2", "sesn_1", created=6)


async def test_claims_hand_out_the_oldest_item_once_and_reclaim_stale_polls(store: Store) -> None:
    await store.work.insert_work(item("work_b", "sesn_b", created=2))
    await store.work.insert_work(item("work_a", "sesn_a", created=1))
    await store.work.insert_work(item("work_x", "sesn_x", created=0, env="env_other"))
    first = await store.work.claim_work("env_1", now=ts(10), reclaim_before=ts(5), token_hash="t1")
    second = await store.work.claim_work("env_1", now=ts(10), reclaim_before=ts(5), token_hash="t2")
    assert first is not None and second is not None
    assert (first.id, first.polled_at, first.token_hash) == ("work_a", ts(10), "t1")
    assert second.id == "work_b"
    assert await store.work.claim_work("env_1", now=ts(11), reclaim_before=ts(6), token_hash="t3") is None
    again = await store.work.claim_work("env_1", now=ts(20), reclaim_before=ts(15), token_hash="t4")
    assert again is not None and again.id == "work_a" and again.revision == first.revision + 1
    assert await store.work.work_by_token("t4") == again
    assert await store.work.work_by_token("t1") is None


async def test_concurrent_claims_never_share_an_item(store: Store) -> None:
    for n in range(10):
        await store.work.insert_work(item(f"work_{n}", f"sesn_{n}", created=n))
    claims = await asyncio.gather(
        *(store.work.claim_work("env_1", now=ts(30), reclaim_before=ts(25), token_hash=f"t{n}") for n in range(15))
    )
    got = [c.id for c in claims if c is not None]
    assert sorted(got) == [f"work_{n}" for n in range(10)]


async def test_update_is_compare_and_set(store: Store) -> None:
    await store.work.insert_work(item("work_1", "sesn_1"))
    current = await store.work.get_work("ws", "work_1")
    assert current is not None
    acked = replace(current, state="starting", acknowledged_at=ts(1), revision=current.revision + 1)
    assert await store.work.update_work(acked, expected_revision=current.revision)
    assert not await store.work.update_work(replace(acked, state="stopped"), expected_revision=current.revision)
    assert await store.work.get_work("ws", "work_1") == acked
    assert await store.work.get_work("other", "work_1") is None


async def test_lists_counts_expiry_and_pollers(store: Store) -> None:
    for n in range(5):
        await store.work.insert_work(item(f"work_{n}", f"sesn_{n}", created=n))
    claimed = await store.work.claim_work("env_1", now=ts(40), reclaim_before=ts(35), token_hash="t")
    assert claimed is not None
    leased = replace(
        claimed, state="active", lease_expires_at=ts(45), token_hash=claimed.token_hash, revision=claimed.revision + 1
    )
    assert await store.work.update_work(leased, expected_revision=claimed.revision)
    await store.work.claim_work("env_1", now=ts(41), reclaim_before=ts(35), token_hash="u")  # pending
    counts = await store.work.queue_counts("env_1", pending_since=ts(36))
    assert (counts.depth, counts.pending, counts.oldest_queued_at) == (3, 1, ts(1))
    page = await store.work.list_work("ws", "env_1", after=None, limit=2)
    assert [r.id for r in page] == ["work_0", "work_1"]
    rest = await store.work.list_work("ws", "env_1", after=(page[-1].created_at, page[-1].id), limit=10)
    assert [r.id for r in rest] == ["work_2", "work_3", "work_4"]
    assert await store.work.list_work("other", "env_1", after=None, limit=10) == []
    assert await store.work.expired_work(ts(44), limit=10) == []
    assert [r.id for r in await store.work.expired_work(ts(46), limit=10)] == ["work_0"]
    await store.work.note_poll("env_1", "w1", ts(10))
    await store.work.note_poll("env_1", "w2", ts(20))
    await store.work.note_poll("env_1", "w1", ts(30))
    await store.work.note_poll("env_2", "w3", ts(30))
    assert await store.work.workers_polling("env_1", since=ts(25)) == 1
    assert await store.work.workers_polling("env_1", since=ts(15)) == 2


async def test_environment_keys_are_found_by_hash_and_scoped_to_their_environment(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open()
    try:
        key = EnvironmentKeyRow("ws", "ekey_1", "env_1", "hash_1", ts(1))
        await store.work.insert_environment_key(key)
        await store.work.insert_environment_key(EnvironmentKeyRow("ws", "ekey_2", "env_1", "hash_2", ts(2)))
        assert [k.id for k in await store.work.list_environment_keys("ws", "env_1")] == ["ekey_1", "ekey_2"]
        assert await store.work.list_environment_keys("other", "env_1") == []
        assert not await store.work.delete_environment_key("ws", "env_2", "ekey_1")
        assert not await store.work.delete_environment_key("other", "env_1", "ekey_1")
    finally:
        await store.close()
    reopened = store_factory()  # durable across a reopen
    await reopened.open()
    try:
        assert await reopened.work.environment_key_by_hash("hash_1") == key
        assert await reopened.work.delete_environment_key("ws", "env_1", "ekey_1")
        assert await reopened.work.environment_key_by_hash("hash_1") is None
        assert await reopened.work.environment_key_by_hash("hash_2") is not None
    finally:
        await reopened.close()
