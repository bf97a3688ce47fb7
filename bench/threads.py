"""Multiagent threads in process: a coordinator delegating to 10 agents in parallel, against the same 10 pieces of
work done as 10 sequential turns of one session, in the same run (`engine/_threads.py`).

Each piece of work is a scripted message that sleeps WORK_MS then answers, so the parallel run's wall time is
about one piece plus what delegation costs (creating the threads, their turns, answering the coordinator, its
second request), and the sequential one about ten pieces.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from loophost import wire
from loophost.runtime import Runtime, StoredEvent

from ._registry import Context, benchmark
from ._report import Metric, median, metric

WS = "bench"
CHILDREN = 10
WORK_MS = 50


def _message(text: str) -> wire.UserMessageParams:
    return wire.UserMessageParams.model_validate({"type": "user.message", "content": [{"type": "text", "text": text}]})


def _work(i: int) -> str:
    return f"sleep {WORK_MS}\nwork {i}"


async def _until_idle(rt: Runtime, session_id: str, text: str) -> float:
    """Send `text` and wait for the turn's idle on a live stream; seconds taken."""
    started = time.perf_counter()
    stream = await rt.open_stream(WS, session_id)
    try:
        await rt.send_events(WS, session_id, [_message(text)])
        async for event in stream:
            if isinstance(event, StoredEvent) and event.type == "session.status_idle":
                break
    finally:
        await stream.aclose()
    return time.perf_counter() - started


@benchmark("agent.delegation_parallel")
async def delegation_parallel(ctx: Context) -> AsyncIterator[Metric]:
    """A coordinator with 10 parallel child threads vs the same work as 10 sequential turns (wall time)."""
    rounds = ctx.size(10, 2)
    async with Runtime.from_url(ctx.fresh_path("threads")) as rt:
        env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="bench-threads"))
        roster = [
            (await rt.create_agent(WS, wire.AgentCreateParams(name=f"worker{i}", model="scripted"))).id
            for i in range(CHILDREN)
        ]
        lead = await rt.create_agent(
            WS,
            wire.AgentCreateParams.model_validate(
                {"name": "lead", "model": "scripted", "multiagent": {"type": "coordinator", "agents": roster}}
            ),
        )
        plain = await rt.create_agent(WS, wire.AgentCreateParams(name="plain", model="scripted"))
        delegate = "\n".join(
            "call send_to_agent " + json.dumps({"agent": f"worker{i}", "message": _work(i)}) for i in range(CHILDREN)
        )
        parallel: list[float] = []
        sequential: list[float] = []
        for index in range(rounds + 1):
            session = await rt.start_session(WS, wire.SessionCreateParams(agent=lead.id, environment_id=env.id))
            took = await _until_idle(rt, session.id, delegate)
            threads = await rt.list_threads(WS, session.id)
            if len(threads) != CHILDREN + 1:
                raise RuntimeError(f"expected {CHILDREN} child threads, saw {len(threads) - 1}")
            single = await rt.start_session(WS, wire.SessionCreateParams(agent=plain.id, environment_id=env.id))
            one_by_one = 0.0
            for i in range(CHILDREN):
                one_by_one += await _until_idle(rt, single.id, _work(i))
            if index:  # the first round warms up
                parallel.append(took)
                sequential.append(one_by_one)
    ours, theirs = (median(parallel) or 0) * 1000, (median(sequential) or 0) * 1000
    yield metric(
        "agent.delegation_parallel",
        round(ours, 2),
        "ms",
        p50=round(ours, 2),
        p99=None,
        p_unit="ms wall time: one coordinator turn delegating to 10 threads in parallel, send -> idle",
        peer="the same 10 pieces of work as 10 sequential turns of one session",
        peer_p50=round(theirs, 2),
        speedup=round(theirs / ours, 2) if ours else None,
        work_ms=WORK_MS,
        children=CHILDREN,
        rounds=len(parallel),
        ref="issue 15",
    )
