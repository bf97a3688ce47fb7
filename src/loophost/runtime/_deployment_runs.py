"""The deployment scheduler: fires due schedules, once each, and finishes runs a dead node left pending.

Promises (tests/runtime/test_deployments.py, tests/runtime/store/test_contract_deployments.py):
- a due fire is recorded once however many nodes or restarts see it: `fire` moves `next_run_at` with a
  compare-and-set and the run's (deployment, scheduled time) is unique;
- fires missed while no scheduler ran are run once, not once per missed tick: the next fire is computed from now;
- a run is recorded before its session starts; one whose node died is finished by whoever claims it next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .. import wire
from ._clock import rfc3339
from ._deployments import CLAIM, Deployments, fires_after, new_run
from ._webhook_events import outbox_event
from .store import Store

log = logging.getLogger("loophost.runtime.deployments")

BATCH = 50


class DeploymentScheduler:
    """Owned by the runtime: `start` on open, `close` on close. `run_once` is one tick (tests call it directly
    after moving the clock)."""

    def __init__(self, store: Store, deployments: Deployments, *, poll_interval: float = 1.0) -> None:
        self._store = store
        self._deployments = deployments
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loophost-deployment-scheduler")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store outage must not stop schedules for good
                log.exception("deployment scheduler tick failed")
            with contextlib.suppress(TimeoutError):  # (not `wait_for`: on 3.11 it can swallow a cancellation)
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            self._wake.clear()

    async def run_once(self) -> int:
        """Fire what is due and finish abandoned runs; how many runs this call executed."""
        at = self._deployments.clock()
        executed = 0
        for row in await self._store.deployments.due_deployments(rfc3339(at), limit=BATCH):
            assert row.next_run_at is not None
            deployment = wire.Deployment.model_validate_json(row.body)
            if deployment.schedule is None:
                continue
            schedule = deployment.schedule
            new_next = rfc3339(fires_after(schedule.expression, schedule.timezone, at, 1)[0])
            trigger = wire.TriggerContext(type="schedule", scheduled_at=row.next_run_at)
            run = new_run(row, deployment, at, trigger=trigger)
            schedule.last_run_at = at
            body = deployment.model_dump_json(by_alias=True)
            started = outbox_event(
                "deployment_run.started", run.id, row.workspace, at=run.created_at, deployment_id=row.id
            )
            if await self._store.deployments.fire(
                row.id, expected_next=row.next_run_at, new_next=new_next, body=body, run=run, webhooks=(started,)
            ):
                self._deployments.outbox_written()
                await self._deployments.execute(run)
                executed += 1
        for run in await self._store.deployments.claim_runs(
            rfc3339(at), claimed_until=rfc3339(at + CLAIM), limit=BATCH
        ):
            await self._deployments.execute(run)
            executed += 1
        return executed
