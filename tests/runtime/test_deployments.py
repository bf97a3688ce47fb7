"""Deployments in one process: schedules fired by a clock the test moves (no minute-long sleeps), pause/unpause,
run now, a run that cannot start, missed fires run once, and two schedulers (two nodes on PostgreSQL) that never
both start a due run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loophost import wire
from loophost.runtime import Conflict, InvalidRequest, Runtime, RuntimeConfig

from .conftest import WS

START = datetime(2026, 3, 6, 12, 0, 30, tzinfo=UTC)
"""Half a minute past 12:00 UTC on a Friday (before the US DST change of 2026-03-08)."""


class Clock:
    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with Runtime.from_url(tmp_path / "runtime.db") as runtime:
        await runtime.deployment_scheduler.close()  # the test owns the ticks: `run_once` after moving the clock
        yield runtime


@pytest.fixture
def clock(rt: Runtime) -> Clock:
    c = Clock()
    rt.deployments.clock = c
    return c


async def deploy(rt: Runtime, *, schedule: str | None = "* * * * *", timezone: str = "UTC") -> wire.Deployment:
    agent = await rt.create_agent(WS, wire.AgentCreateParams.model_validate({"name": "a", "model": "scripted"}))
    env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name=f"env-{agent.id}"))
    body: dict[str, object] = {
        "name": "nightly",
        "agent": agent.id,
        "environment_id": env.id,
        "initial_events": [{"type": "user.message", "content": [{"type": "text", "text": "report"}]}],
    }
    if schedule is not None:
        body["schedule"] = {"type": "cron", "expression": schedule, "timezone": timezone}
    return await rt.deployments.create(WS, wire.DeploymentCreateParams.model_validate(body))


async def runs(rt: Runtime, deployment: wire.Deployment) -> list[wire.DeploymentRun]:
    return (await rt.deployments.list_runs(WS, deployment_id=deployment.id, limit=100)).data


async def test_an_every_minute_schedule_fires_once_a_minute_on_the_test_clock(rt: Runtime, clock: Clock) -> None:
    deployment = await deploy(rt)
    assert deployment.schedule is not None and deployment.status == "active"
    assert deployment.schedule.upcoming_runs_at == [START.replace(second=0) + timedelta(minutes=m) for m in range(1, 6)]

    assert await rt.deployment_scheduler.run_once() == 0  # not due yet
    clock.advance(seconds=40)
    assert await rt.deployment_scheduler.run_once() == 1
    assert await rt.deployment_scheduler.run_once() == 0  # fired once
    clock.advance(minutes=1)
    assert await rt.deployment_scheduler.run_once() == 1

    fired = await runs(rt, deployment)
    assert [r.trigger_context.scheduled_at for r in fired] == [
        datetime(2026, 3, 6, 12, 2, tzinfo=UTC),
        datetime(2026, 3, 6, 12, 1, tzinfo=UTC),
    ]
    assert all(r.trigger_context.type == "schedule" and r.error is None for r in fired)
    session_id = fired[0].session_id
    assert session_id is not None
    session = await rt.get_session(WS, session_id)
    assert session.deployment_id == deployment.id and session.agent.id == deployment.agent.id
    first = (await rt.list_events(WS, session_id, limit=10)).data[0]
    assert first.type == "user.message"
    refreshed = await rt.deployments.get(WS, deployment.id)
    assert refreshed.schedule is not None and refreshed.schedule.last_run_at == clock.at


async def test_fires_missed_while_down_run_once(rt: Runtime, clock: Clock) -> None:
    deployment = await deploy(rt)
    clock.advance(hours=3)  # 180 fires missed
    assert await rt.deployment_scheduler.run_once() == 1
    assert await rt.deployment_scheduler.run_once() == 0
    assert len(await runs(rt, deployment)) == 1


async def test_pause_stops_fires_and_unpause_resumes_them(rt: Runtime, clock: Clock) -> None:
    deployment = await deploy(rt)
    paused = await rt.deployments.pause(WS, deployment.id)
    assert paused.status == "paused" and paused.paused_reason == wire.PausedReason(type="manual")
    assert paused.schedule is not None and len(paused.schedule.upcoming_runs_at) == 5
    clock.advance(minutes=5)
    assert await rt.deployment_scheduler.run_once() == 0
    active = await rt.deployments.unpause(WS, deployment.id)
    assert active.status == "active" and active.paused_reason is None
    assert await rt.deployment_scheduler.run_once() == 0  # the fires missed while paused are not made up
    clock.advance(minutes=1)
    assert await rt.deployment_scheduler.run_once() == 1
    listed = await rt.deployments.list(WS, status="paused")
    assert deployment.id not in [d.id for d in listed.data]


async def test_run_now_starts_a_session_and_records_the_run(rt: Runtime, clock: Clock) -> None:
    deployment = await deploy(rt, schedule=None)
    run = await rt.deployments.run_now(WS, deployment.id)
    assert run.trigger_context.type == "manual" and run.error is None and run.session_id is not None
    assert await rt.deployments.get_run(WS, run.id) == run
    assert (await rt.get_session(WS, run.session_id)).deployment_id == deployment.id
    assert [r.id for r in (await rt.deployments.list_runs(WS, trigger_type="manual", limit=100)).data] == [run.id]


async def test_a_run_whose_agent_is_archived_records_the_error_and_pauses(rt: Runtime, clock: Clock) -> None:
    deployment = await deploy(rt)
    await rt.archive_agent(WS, deployment.agent.id)
    manual = await rt.deployments.run_now(WS, deployment.id)
    assert manual.session_id is None and manual.error is not None
    assert manual.error.type == "agent_archived_error"
    assert (await rt.deployments.get(WS, deployment.id)).status == "active"  # a manual failure does not pause

    clock.advance(minutes=1)
    assert await rt.deployment_scheduler.run_once() == 1
    failed = (await rt.deployments.list_runs(WS, deployment_id=deployment.id, has_error=True, limit=10)).data
    assert len(failed) == 2 and all(r.error and r.error.type == "agent_archived_error" for r in failed)
    paused = await rt.deployments.get(WS, deployment.id)
    assert paused.status == "paused" and paused.paused_reason is not None
    assert paused.paused_reason.type == "error" and paused.paused_reason.error is not None
    assert paused.paused_reason.error.type == "agent_archived_error"


async def test_schedules_follow_their_time_zone(rt: Runtime, clock: Clock) -> None:
    deployment = await deploy(rt, schedule="0 9 * * *", timezone="America/New_York")
    assert deployment.schedule is not None
    hours = [t.astimezone(UTC).hour for t in deployment.schedule.upcoming_runs_at]
    assert hours == [14, 14, 13, 13, 13]  # 09:00 EST, then 09:00 EDT after 2026-03-08


async def test_archive_clears_the_schedule_and_refuses_changes(rt: Runtime, clock: Clock) -> None:
    deployment = await deploy(rt)
    archived = await rt.deployments.archive(WS, deployment.id)
    assert archived.archived_at is not None and archived.schedule is not None
    assert archived.schedule.upcoming_runs_at == []
    clock.advance(minutes=2)
    assert await rt.deployment_scheduler.run_once() == 0
    with pytest.raises(Conflict):
        await rt.deployments.run_now(WS, deployment.id)
    assert deployment.id not in [d.id for d in (await rt.deployments.list(WS)).data]
    assert deployment.id in [d.id for d in (await rt.deployments.list(WS, include_archived=True)).data]


@pytest.mark.parametrize(
    ("expression", "timezone"),
    [("* * * *", "UTC"), ("0 0 L * *", "UTC"), ("@daily", "UTC"), ("61 * * * *", "UTC"), ("* * * * *", "Mars/Base")],
)
async def test_bad_schedules_are_refused(rt: Runtime, expression: str, timezone: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await deploy(rt, schedule=expression, timezone=timezone)
    assert caught.value.code == "invalid_schedule"


async def test_two_nodes_on_postgres_never_both_start_a_due_run(postgres_url: str) -> None:
    config = RuntimeConfig(vault_key="u2sd0Bq2sFhJ8pN0XTu9D3G1Qkzv2b5cQwS1mQ9QJqg")
    async with (
        Runtime.from_url(postgres_url, config=config) as one,
        Runtime.from_url(postgres_url, config=config) as two,
    ):
        clock = Clock()
        one.deployments.clock = two.deployments.clock = clock
        await one.deployment_scheduler.close()  # the test drives both nodes' ticks, at once
        await two.deployment_scheduler.close()
        deployments = [await deploy(one) for _ in range(5)]
        for _ in range(3):
            clock.advance(minutes=1)
            fired = await asyncio.gather(one.deployment_scheduler.run_once(), two.deployment_scheduler.run_once())
            assert sum(fired) == 5
        for deployment in deployments:
            recorded = await runs(two, deployment)
            assert len(recorded) == 3 and all(r.session_id for r in recorded)
            assert len({r.trigger_context.scheduled_at for r in recorded}) == 3


async def test_a_restart_runs_the_missed_fire_once(tmp_path: Path) -> None:
    clock = Clock()
    async with Runtime.from_url(tmp_path / "restart.db") as first:
        await first.deployment_scheduler.close()
        first.deployments.clock = clock
        deployment = await deploy(first)
    clock.advance(minutes=30)  # down for half an hour
    async with Runtime.from_url(tmp_path / "restart.db") as second:
        await second.deployment_scheduler.close()
        second.deployments.clock = clock
        assert await second.deployment_scheduler.run_once() == 1
        assert await second.deployment_scheduler.run_once() == 0
        assert len(await runs(second, deployment)) == 1
