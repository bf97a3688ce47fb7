"""A self-hosted session never waits on worker calls without a work item, even when the process that committed
its input died before queueing one (`Runtime._worker_needed`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from loophost import wire
from loophost.runtime import Runtime
from loophost.runtime._events import EventsMixin
from loophost.runtime.store import WorkRow

from .conftest import WS, user_message

WORKER_TOOLS = [{"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "always_allow"}}}]


async def _idle(rt: Runtime, session_id: str) -> None:
    for _ in range(500):
        session = await rt.get_session(WS, session_id)
        if session.status == "idle":
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"session {session_id} did not settle")


async def _live_item(rt: Runtime, session_id: str) -> WorkRow | None:
    for _ in range(500):
        item = await rt.store.work.live_work(session_id)
        if item is not None:
            return item
        await asyncio.sleep(0.01)
    return None


async def test_a_turn_that_parks_on_worker_calls_queues_the_item_its_input_never_got(tmp_path: Path) -> None:
    path = tmp_path / "rt.db"
    async with Runtime.from_url(path) as rt:
        agent = await rt.create_agent(
            WS, wire.AgentCreateParams.model_validate({"name": "a", "model": "scripted", "tools": WORKER_TOOLS})
        )
        env = await rt.create_environment(
            WS, wire.EnvironmentCreateParams.model_validate({"name": "mine", "config": {"type": "self_hosted"}})
        )
        session = await rt.start_session(WS, wire.SessionCreateParams(agent=agent.id, environment_id=env.id))
        created = await rt.store.work.live_work(session.id)
        assert created is not None
        await rt.work.stop(WS, env.id, created.id, force=True)  # the item the session started with is done
        assert await rt.store.work.live_work(session.id) is None

        # What a process that died between committing the input and queueing its item leaves behind: the input
        # committed (the turn runs), no item queued. `EventsMixin.send_events` is that commit without the enqueue.
        await EventsMixin.send_events(rt, WS, session.id, [user_message('call bash {"command": "echo hi"}')])
        await _idle(rt, session.id)
        assert len(await rt.open_worker_calls(WS, session.id)) == 1  # parked on the bash call

        item = await _live_item(rt, session.id)  # queued once the worker has settled the session
        assert item is not None and item.state == "queued" and item.environment_id == env.id
        polled = await rt.work.poll(WS, env.id, block_ms=1)
        assert polled is not None and polled.data.id == session.id

    async with Runtime.from_url(path) as rt:  # and it is durable: a restart finds the same single item
        again = await rt.store.work.live_work(session.id)
        assert again is not None and again.id == item.id
