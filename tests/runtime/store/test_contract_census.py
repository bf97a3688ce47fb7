"""The census (`Store.census`): sessions and live work items counted by state, and the webhook backlog, on both
backends."""

from __future__ import annotations

from dataclasses import replace

from loophost.runtime.store import Store

from ._rows import session_row
from .test_contract_webhooks import endpoint, outbox
from .test_contract_work import item, ts


async def test_counts_group_sessions_and_live_work_items_by_state(store: Store) -> None:
    empty = await store.census.counts()
    assert (empty.sessions, empty.work_items, empty.queued) == ({}, {}, {})
    await store.insert_session(session_row("sesn_1", workspace="ws_a"))
    await store.insert_session(session_row("sesn_2", workspace="ws_b"))
    await store.insert_session(replace(session_row("sesn_3", workspace="ws_a"), status="running"))
    await store.work.insert_work(item("work_1", "sesn_1", env="env_1"))
    await store.work.insert_work(item("work_2", "sesn_2", env="env_1", created=1))
    await store.work.insert_work(item("work_3", "sesn_3", env="env_2", created=2))
    claimed = await store.work.claim_work("env_2", now=ts(10), reclaim_before=ts(5), token_hash="t")
    assert claimed is not None
    active = replace(claimed, state="active", revision=claimed.revision + 1)
    assert await store.work.update_work(active, expected_revision=claimed.revision)
    stopped = replace(item("work_4", "sesn_9", env="env_1", created=3), state="stopped", stopped_at=ts(4))
    await store.work.insert_work(stopped)  # history: not counted

    counts = await store.census.counts()
    assert counts.sessions == {"idle": 2, "running": 1}  # over every workspace
    assert counts.work_items == {"queued": 2, "active": 1}
    assert counts.queued == {"env_1": 2}


async def test_the_webhook_backlog_counts_pending_deliveries_of_every_endpoint(store: Store) -> None:
    assert (await store.census.counts()).webhook_backlog == 0
    await store.webhooks.insert_endpoint(endpoint("whep_a"))
    await store.webhooks.insert_endpoint(endpoint("whep_b", ws="other"))
    await store.webhooks.add_events([outbox(f"wevt_{i}") for i in range(3)] + [outbox("wevt_9", ws="other")])
    assert (await store.census.counts()).webhook_backlog == 4
    await store.webhooks.delivered("whep_a", "wevt_0", at=ts(3))
    await store.webhooks.failed("whep_a", "wevt_1", error="HTTP 500", next_attempt_at=None, disable_after=20)
    await store.webhooks.failed("whep_a", "wevt_2", error="HTTP 500", next_attempt_at=ts(30), disable_after=20)
    assert (await store.census.counts()).webhook_backlog == 2  # a retry still waits; delivered and given up do not
