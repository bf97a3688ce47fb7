"""The deployment part of the Store contract (`Store.deployments`), against every backend."""

from __future__ import annotations

import asyncio

from loophost.runtime.store import DeploymentRow, RunQuery, RunRow, Store

from .conftest import StoreFactory


def ts(minute: int) -> str:
    return f"2026-01-01T00:{minute:02d}:00.000000Z"


def deployment(deployment_id: str = "depl_1", *, next_run_at: str | None = None) -> DeploymentRow:
    return DeploymentRow("ws", deployment_id, ts(0), None, "active", "agent_1", next_run_at or ts(1), "{}")


def run(run_id: str, *, scheduled: int | None = 1, claimed_until: str | None = None) -> RunRow:
    scheduled_at = ts(scheduled) if scheduled is not None else None
    trigger = "schedule" if scheduled is not None else "manual"
    return RunRow("ws", run_id, "depl_1", ts(2), trigger, scheduled_at, "pending", 0, claimed_until, "{}")


async def test_fire_is_compare_and_set_on_the_due_time(store: Store) -> None:
    await store.deployments.insert_deployment(deployment())
    assert [d.id for d in await store.deployments.due_deployments(ts(1), limit=10)] == ["depl_1"]
    fired = await store.deployments.fire("depl_1", expected_next=ts(1), new_next=ts(2), body="{}", run=run("drun_1"))
    again = await store.deployments.fire("depl_1", expected_next=ts(1), new_next=ts(2), body="{}", run=run("drun_2"))
    assert (fired, again) == (True, False)
    assert await store.deployments.due_deployments(ts(1), limit=10) == []
    assert [r.id for r in await store.deployments.list_runs("ws", RunQuery(limit=10))] == ["drun_1"]


async def test_a_scheduled_time_is_recorded_once(store: Store) -> None:
    await store.deployments.insert_deployment(deployment())
    await store.deployments.fire("depl_1", expected_next=ts(1), new_next=ts(2), body="{}", run=run("drun_1"))
    # a stale write moved the due time back: the same scheduled time fires no second run
    row = await store.deployments.get_deployment("ws", "depl_1")
    assert row is not None
    await store.deployments.update_deployment(deployment(next_run_at=ts(1)))
    assert not await store.deployments.fire("depl_1", expected_next=ts(1), new_next=ts(2), body="{}", run=run("drun_2"))


async def test_concurrent_fires_record_one_run(store_factory: StoreFactory) -> None:
    first, second = store_factory(), store_factory()
    await first.open()
    try:
        if first.cluster is None:
            second = first
        else:
            await second.open()
        await first.deployments.insert_deployment(deployment())
        results = await asyncio.gather(
            *(
                s.deployments.fire("depl_1", expected_next=ts(1), new_next=ts(2), body="{}", run=run(f"drun_{i}"))
                for i, s in enumerate([first, second] * 4)
            )
        )
        assert sum(results) == 1
    finally:
        if second is not first:
            await second.close()
        await first.close()


async def test_pending_runs_are_claimed_by_one_caller_until_the_claim_expires(store: Store) -> None:
    await store.deployments.insert_run(run("drun_1", scheduled=None, claimed_until=ts(5)))
    assert await store.deployments.claim_runs(ts(4), claimed_until=ts(9), limit=10) == []  # its creator holds it
    taken = await store.deployments.claim_runs(ts(6), claimed_until=ts(9), limit=10)
    assert [r.id for r in taken] == ["drun_1"]
    assert await store.deployments.claim_runs(ts(7), claimed_until=ts(9), limit=10) == []
    await store.deployments.finish_run(taken[0])
    assert await store.deployments.claim_runs(ts(30), claimed_until=ts(40), limit=10) == []
    done = await store.deployments.get_run("ws", "drun_1")
    assert done is not None and done.state == "done"
    assert await store.deployments.get_run("other", "drun_1") is None
