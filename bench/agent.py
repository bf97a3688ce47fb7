"""The agent loop: in-process turn overhead (M1, without HTTP), throughput at 100 sessions (M4), crash trials (M9).

The peer for the turn overhead is pydantic-ai alone running the same scripted model with the same history: what
is left is what loophost adds (durable events, checkpoints, the worker, the stream).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic_ai import Agent

from loophost import wire
from loophost.runtime import Runtime, StoredEvent
from loophost.runtime.models import scripted_model

from ._registry import Context, benchmark
from ._report import Metric, latency_ms, median, metric

WS = "bench"


def _message(text: str) -> wire.UserMessageParams:
    return wire.UserMessageParams.model_validate({"type": "user.message", "content": [{"type": "text", "text": text}]})


async def _setup(rt: Runtime) -> tuple[str, str]:
    agent = await rt.create_agent(WS, wire.AgentCreateParams(name="bench", model="scripted"))
    env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name=f"bench-{agent.id}"))
    return agent.id, env.id


async def _turn(rt: Runtime, session_id: str, text: str) -> float:
    """Send a message and wait for the turn's idle on the stream; seconds taken."""
    after = await rt.store.last_seq(session_id) or 0
    started = time.perf_counter()
    await rt.send_events(WS, session_id, [_message(text)])
    async for event in rt.stream_events(WS, session_id, after_seq=after):
        if isinstance(event, StoredEvent) and event.type == "session.status_idle":
            break
    return time.perf_counter() - started


@benchmark("agent.turn_overhead")
async def turn_overhead(ctx: Context) -> AsyncIterator[Metric]:
    """Sequential echo turns (scripted model, no tools) vs pydantic-ai alone on the same model and history."""
    sessions, turns_each = ctx.size(40, 8), 5
    async with Runtime.from_url(ctx.fresh_path("turns")) as rt:
        agent_id, env_id = await _setup(rt)
        samples: list[float] = []
        for index in range(sessions + 2):
            session = await rt.start_session(WS, wire.SessionCreateParams(agent=agent_id, environment_id=env_id))
            timings = [await _turn(rt, session.id, f"hello {i}") for i in range(turns_each)]
            if index >= 2:  # the first sessions warm up imports and caches
                samples += timings
    # the peer: the same turns through pydantic-ai alone, history in memory, nothing durable
    peer: list[float] = []
    agent: Agent[None, str] = Agent(scripted_model())
    for index in range(sessions + 2):
        history: list = []  # type: ignore[type-arg]
        for i in range(turns_each):
            started = time.perf_counter()
            result = await agent.run(f"hello {i}", message_history=history)
            elapsed = time.perf_counter() - started
            history = result.all_messages()
            if index >= 2:
                peer.append(elapsed)
    ours, theirs = latency_ms(samples), latency_ms(peer)
    overhead = (ours["p50"] or 0) - (theirs["p50"] or 0)
    yield metric(
        "agent.turn_overhead",
        round(overhead, 3),
        "ms",
        p50=ours["p50"],
        p99=ours["p99"],
        p_unit="ms (whole turn: send -> idle on the stream)",
        peer="pydantic-ai agent.run alone, same scripted model and history",
        peer_p50=theirs["p50"],
        peer_p99=theirs["p99"],
        ratio_vs_peer=round((ours["p50"] or 0) / (theirs["p50"] or 1), 2),
        turns=len(samples),
        goal="overhead p50 <= 3 ms (M1, over HTTP)",
        ref="M1",
    )


@benchmark("agent.throughput")
async def throughput(ctx: Context) -> AsyncIterator[Metric]:
    """Aggregate turns/s with 100 sessions each looping echo turns concurrently."""
    concurrency = 100
    turns_each = ctx.size(10, 3)
    async with Runtime.from_url(ctx.fresh_path("throughput")) as rt:
        agent_id, env_id = await _setup(rt)
        ids = [
            (await rt.start_session(WS, wire.SessionCreateParams(agent=agent_id, environment_id=env_id))).id
            for _ in range(concurrency)
        ]
        await _turn(rt, ids[0], "warm up")
        latencies: list[float] = []

        async def loop(session_id: str) -> None:
            for i in range(turns_each):
                latencies.append(await _turn(rt, session_id, f"turn {i}"))

        started = time.perf_counter()
        await asyncio.gather(*(loop(s) for s in ids))
        elapsed = time.perf_counter() - started
    stats = latency_ms(latencies)
    yield metric(
        "agent.throughput",
        round(len(latencies) / elapsed, 1),
        "turns/s",
        p50=stats["p50"],
        p99=stats["p99"],
        p_unit="ms per turn",
        sessions=concurrency,
        turns=len(latencies),
        goal=">= 1000 turns/s at 100 sessions (M4)",
        ref="M4",
    )


@benchmark("agent.crash_trials")
async def crash_trials(ctx: Context) -> AsyncIterator[Metric]:
    """SIGKILL a process running tool-using sessions at random points; count lost acked events and re-run tools."""
    from tests.runtime.agent._crash import Zygote, delays, recover_and_check

    trials = ctx.size(100, 10)
    zygote = await asyncio.to_thread(Zygote)
    lost = duplicated = orphans = acked = executions = 0
    recovery: list[float] = []
    try:
        for index, delay in enumerate(delays(seed=2026, count=trials)):
            db = Path(ctx.fresh_path(f"crash-{index}"))
            await asyncio.to_thread(zygote.run_and_kill, db, delay)
            result = await recover_and_check(db)
            lost += len(result.lost)
            duplicated += len(result.duplicated)
            orphans += result.orphaned_calls
            acked += result.acked
            executions += result.executions
            recovery.append(result.recovered_ms)
    finally:
        await asyncio.to_thread(zygote.close)
    yield metric(
        "agent.crash_trials",
        trials,
        "trials",
        lost_acked_events=lost,
        duplicated_tool_executions=duplicated,
        orphaned_tool_calls=orphans,
        acked_events=acked,
        tool_executions=executions,
        reopen_ms_p50=median(recovery),
        sessions_per_trial=3,
        goal="0 lost, 0 duplicated (M9)",
        ref="M9",
    )
