"""The webhook part of the Store contract (`Store.webhooks`, and outbox rows riding on `commit_session`), against
every backend (see conftest.STORE_BACKENDS)."""

from __future__ import annotations

import asyncio
import json

import pytest

from loophost.runtime._errors import StaleWrite
from loophost.runtime.store import (
    EventQuery,
    NewEvent,
    OutboxEvent,
    SessionChange,
    SessionRow,
    Store,
    WebhookEndpointRow,
)

from .conftest import StoreFactory


def ts(second: int) -> str:
    return f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}.000000Z"


def endpoint(
    endpoint_id: str, *, events: tuple[str, ...] = ("session.status_idled",), ws: str = "ws"
) -> WebhookEndpointRow:
    return WebhookEndpointRow(
        workspace=ws,
        id=endpoint_id,
        url="https://example.com/hook",
        enabled_events=json.dumps(list(events)),
        state="enabled",
        disabled_reason="",
        name="",
        description="",
        created_at=ts(0),
        updated_at=ts(0),
        secret=b"sealed",
    )


def outbox(event_id: str, *, kind: str = "session.status_idled", ws: str = "ws", at: int = 1) -> OutboxEvent:
    return OutboxEvent(id=event_id, workspace=ws, type=kind, created_at=ts(at), payload=f'{{"id":"{event_id}"}}')


async def new_session(store: Store, session_id: str) -> None:
    row = SessionRow("ws", session_id, "agent_1", 1, "env_1", "idle", ts(0), None, 1, 0, "{}")
    await store.insert_session(row)


async def test_a_commit_writes_one_delivery_per_subscribed_endpoint(store: Store) -> None:
    await store.webhooks.insert_endpoint(endpoint("whep_a"))
    await store.webhooks.insert_endpoint(endpoint("whep_b", events=("session.status_terminated",)))
    await store.webhooks.insert_endpoint(endpoint("whep_c", ws="other"))
    await new_session(store, "sesn_1")
    change = SessionChange(status="idle", webhooks=(outbox("wevt_1"),))
    await store.commit_session("sesn_1", expected_revision=1, change=change)

    due = await store.webhooks.claim_deliveries(now=ts(5), claimed_until=ts(65), limit=10)
    assert [(d.endpoint_id, d.event_id, d.payload) for d in due] == [("whep_a", "wevt_1", '{"id":"wevt_1"}')]
    assert due[0].url == "https://example.com/hook" and due[0].secret == b"sealed"


async def test_a_commit_that_fails_writes_no_delivery(store: Store) -> None:
    await store.webhooks.insert_endpoint(endpoint("whep_a"))
    await new_session(store, "sesn_1")
    change = SessionChange(status="idle", webhooks=(outbox("wevt_1"),))
    with pytest.raises(StaleWrite):
        await store.commit_session("sesn_1", expected_revision=7, change=change)
    assert await store.webhooks.claim_deliveries(now=ts(5), claimed_until=ts(65), limit=10) == []
    assert await store.webhooks.delivery_state("whep_a", "wevt_1") is None


async def test_outbox_rows_survive_a_reopen(store_factory: StoreFactory) -> None:
    first = store_factory()
    await first.open()
    await first.webhooks.insert_endpoint(endpoint("whep_a"))
    await new_session(first, "sesn_1")
    event = NewEvent("sevt_1", "session.status_idle", ts(1), '{"type":"session.status_idle"}')
    await first.commit_session(
        "sesn_1", expected_revision=1, change=SessionChange(status="idle", webhooks=(outbox("wevt_1"),)), events=[event]
    )
    await first.close()
    second = store_factory()
    await second.open()
    try:
        await second.webhooks.release_claims()
        due = await second.webhooks.claim_deliveries(now=ts(5), claimed_until=ts(65), limit=10)
        assert [d.event_id for d in due] == ["wevt_1"]
    finally:
        await second.close()


async def test_a_claimed_delivery_is_not_handed_out_again_until_the_claim_expires(store: Store) -> None:
    await store.webhooks.insert_endpoint(endpoint("whep_a"))
    await store.webhooks.add_events([outbox("wevt_1")])
    assert len(await store.webhooks.claim_deliveries(now=ts(5), claimed_until=ts(65), limit=10)) == 1
    assert await store.webhooks.claim_deliveries(now=ts(6), claimed_until=ts(66), limit=10) == []
    again = await store.webhooks.claim_deliveries(now=ts(70), claimed_until=ts(130), limit=10)
    assert [d.event_id for d in again] == ["wevt_1"]


async def test_failures_schedule_retries_and_disable_the_endpoint_at_the_limit(store: Store) -> None:
    await store.webhooks.insert_endpoint(endpoint("whep_a"))
    await store.webhooks.add_events([outbox(f"wevt_{i}") for i in range(3)])
    disabled = []
    for i in range(3):
        disabled.append(
            await store.webhooks.failed(
                "whep_a", f"wevt_{i}", error="HTTP 500", next_attempt_at=ts(30), disable_after=3
            )
        )
    assert disabled == [False, False, True]
    found = await store.webhooks.get_endpoint("ws", "whep_a")
    assert found is not None and found.state == "disabled"
    assert "3 consecutive delivery failures" in found.disabled_reason and "HTTP 500" in found.disabled_reason
    assert await store.webhooks.delivery_state("whep_a", "wevt_0") == ("pending", 1, "HTTP 500")
    assert await store.webhooks.claim_deliveries(now=ts(40), claimed_until=ts(100), limit=10) == []


async def test_a_success_resets_the_failure_count(store: Store) -> None:
    await store.webhooks.insert_endpoint(endpoint("whep_a"))
    await store.webhooks.add_events([outbox("wevt_1"), outbox("wevt_2")])
    await store.webhooks.failed("whep_a", "wevt_1", error="HTTP 500", next_attempt_at=None, disable_after=20)
    await store.webhooks.delivered("whep_a", "wevt_2", at=ts(3))
    found = await store.webhooks.get_endpoint("ws", "whep_a")
    assert found is not None and found.consecutive_failures == 0
    assert await store.webhooks.delivery_state("whep_a", "wevt_1") == ("failed", 1, "HTTP 500")
    assert await store.webhooks.delivery_state("whep_a", "wevt_2") == ("delivered", 1, None)


async def test_recent_deliveries_are_newest_first_with_their_state_and_paged(store: Store) -> None:
    await store.webhooks.insert_endpoint(endpoint("whep_a"))
    await store.webhooks.insert_endpoint(endpoint("whep_b"))
    await store.webhooks.add_events([outbox(f"wevt_{i}", at=i + 1) for i in range(3)])
    await store.webhooks.delivered("whep_a", "wevt_0", at=ts(4))
    await store.webhooks.failed("whep_a", "wevt_1", error="HTTP 500", next_attempt_at=ts(30), disable_after=20)
    first = await store.webhooks.recent_deliveries("whep_a", before=None, limit=2)
    assert [(d.event_id, d.state, d.attempts, d.last_error) for d in first] == [
        ("wevt_2", "pending", 0, None),
        ("wevt_1", "pending", 1, "HTTP 500"),
    ]
    assert first[1].next_attempt_at == ts(30) and first[0].type == "session.status_idled"
    rest = await store.webhooks.recent_deliveries("whep_a", before=(first[-1].created_at, first[-1].event_id), limit=2)
    assert [(d.event_id, d.state, d.delivered_at) for d in rest] == [("wevt_0", "delivered", ts(4))]
    assert len(await store.webhooks.recent_deliveries("whep_b", before=None, limit=10)) == 3


async def test_endpoints_are_scoped_by_workspace_and_paged(store: Store) -> None:
    for i in range(3):
        await store.webhooks.insert_endpoint(endpoint(f"whep_{i}"))
    await store.webhooks.insert_endpoint(endpoint("whep_x", ws="other"))
    assert await store.webhooks.get_endpoint("other", "whep_0") is None
    first = await store.webhooks.list_endpoints("ws", after=None, descending=False, limit=2)
    rest = await store.webhooks.list_endpoints(
        "ws", after=(first[-1].created_at, first[-1].id), descending=False, limit=2
    )
    assert [e.id for e in first + rest] == ["whep_0", "whep_1", "whep_2"]
    assert await store.webhooks.count_endpoints("ws") == 3
    assert await store.webhooks.delete_endpoint("other", "whep_0") is False
    assert await store.webhooks.delete_endpoint("ws", "whep_0") is True


async def test_concurrent_claims_never_hand_out_the_same_delivery(store_factory: StoreFactory) -> None:
    """Two stores on one database (two nodes on PostgreSQL; two connections' turns on SQLite's one writer)."""
    first, second = store_factory(), store_factory()
    await first.open()
    try:
        if first.cluster is None:  # one process owns a SQLite file: claim from the same store, concurrently
            second = first
        else:
            await second.open()
        await first.webhooks.insert_endpoint(endpoint("whep_a"))
        await first.webhooks.add_events([outbox(f"wevt_{i:02d}") for i in range(40)])
        claims = await asyncio.gather(
            *(s.webhooks.claim_deliveries(now=ts(5), claimed_until=ts(65), limit=7) for s in [first, second] * 4)
        )
        ids = [d.event_id for batch in claims for d in batch]
        assert len(ids) == len(set(ids)) == 40
    finally:
        if second is not first:
            await second.close()
        await first.close()


async def test_a_session_insert_writes_its_outbox_rows(store: Store) -> None:
    await store.webhooks.insert_endpoint(endpoint("whep_a", events=("session.created",)))
    row = SessionRow("ws", "sesn_1", "agent_1", 1, "env_1", "idle", ts(0), None, 1, 0, "{}")
    event = NewEvent("sevt_1", "user.message", None, '{"type":"user.message"}')
    await store.insert_session(row, [event], webhooks=(outbox("wevt_1", kind="session.created"),))
    await store.insert_session(
        SessionRow("ws", "sesn_2", "agent_1", 1, "env_1", "idle", ts(0), None, 1, 0, "{}"),
        webhooks=(outbox("wevt_2", kind="session.created"),),
    )
    due = await store.webhooks.claim_deliveries(now=ts(5), claimed_until=ts(65), limit=10)
    assert sorted(d.event_id for d in due) == ["wevt_1", "wevt_2"]
    assert [e.id for e in await store.list_events("sesn_1", EventQuery())] == ["sevt_1"]
