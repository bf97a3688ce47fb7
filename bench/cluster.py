"""Several nodes on one PostgreSQL database (issue #12): delivery across nodes, failover, and crash trials.

Nodes are real `loophost` server processes forked from a pre-imported zygote (tests/server/_cluster.py) on a
throwaway PostgreSQL server on this machine (tests/_postgres.py: unix socket, fsync off); everything shares the
machine's cores.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
from tests._postgres import PostgresServer
from tests.server._cluster import (
    HEADERS,
    Cluster,
    Node,
    NodeZygote,
    crash_trial,
    create_session,
    lease_owner,
    message,
    send,
    until,
)

from ._registry import Context, benchmark
from ._report import Metric, latency_ms, metric


async def _cluster(ctx: Context, stack: AsyncExitStack, lease_ttl: float) -> Cluster:
    server = await asyncio.to_thread(PostgresServer.start)
    stack.callback(server.stop)
    zygote = await asyncio.to_thread(NodeZygote)
    stack.callback(zygote.close)
    database = await asyncio.to_thread(server.create_database, "cluster")
    return Cluster(zygote, database, ctx.tmpdir, lease_ttl=lease_ttl)


async def _frames(http: httpx.AsyncClient, node: Node, session_id: str, seen: asyncio.Queue[tuple[str, float]]) -> None:
    """Read the session's SSE stream on `node`: (event id, arrival time) for every event frame."""
    url = f"{node.url}/v1/sessions/{session_id}/events/stream"
    async with http.stream("GET", url, headers=HEADERS) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                if "id" in event:
                    seen.put_nowait((event["id"], time.perf_counter()))


@benchmark("cluster.cross_node_latency")
async def cross_node_latency(ctx: Context) -> AsyncIterator[Metric]:
    """An event appended through node A (`POST .../events`, a `user.interrupt` on an idle session: one event, no
    turn) until its frame arrives on a stream open on node B (the commit's NOTIFY wakes B, which reads the log),
    against the same on a stream on A itself."""
    samples = ctx.size(300, 40)
    async with AsyncExitStack() as stack:
        cluster = await _cluster(ctx, stack, lease_ttl=15.0)
        a, b = await asyncio.to_thread(cluster.start, "a"), await asyncio.to_thread(cluster.start, "b")
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        results: dict[str, list[float]] = {}
        for label, reader in (("cross", b), ("same", a)):
            sid = await create_session(http, a)
            seen: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
            task = asyncio.create_task(_frames(http, reader, sid, seen))
            try:
                await asyncio.sleep(0.3)  # the stream is open
                latencies = []
                for i in range(samples + 10):
                    started = time.perf_counter()
                    (event_id,) = await send(http, a, sid, {"type": "user.interrupt"})
                    while True:
                        got, at = await asyncio.wait_for(seen.get(), 10)
                        if got == event_id:
                            break
                    if i >= 10:
                        latencies.append(at - started)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            results[label] = latencies
    cross, same = latency_ms(results["cross"]), latency_ms(results["same"])
    yield metric(
        "cluster.cross_node_latency",
        cross["p50"],
        "ms",
        p50=cross["p50"],
        p99=cross["p99"],
        same_node_p50=same["p50"],
        same_node_p99=same["p99"],
        samples=samples,
        note="POST on A until the frame on a stream on B (same_node: the stream on A)",
    )


@benchmark("cluster.failover")
async def failover(ctx: Context) -> AsyncIterator[Metric]:
    """SIGKILL the node driving a session mid-tool; seconds until the other node holds the session's lease and
    drives it again. Goal: <= lease TTL + 1 s."""
    trials = ctx.size(10, 3)
    for ttl in (1.0, 3.0):
        async with AsyncExitStack() as stack:
            cluster = await _cluster(ctx, stack, lease_ttl=ttl)
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
            live = [await asyncio.to_thread(cluster.start), await asyncio.to_thread(cluster.start)]
            times: list[float] = []
            for _ in range(trials):
                sid = await create_session(http, live[0])
                # the resumed turn's model request sleeps 3 s: the new owner holds the lease meanwhile
                await send(http, live[0], sid, message('sleep 3000\ncall bash {"command": "sleep:60000 long"}'))
                await until(lambda sid=sid, c=cluster: _has_owner(c, sid), "someone drives the session")
                owner = cluster.zygote.owner(await lease_owner(cluster.database, sid))
                assert owner is not None
                other = live[1] if owner is live[0] else live[0]
                await asyncio.sleep(3.2 + random.random() * ttl)  # mid-tool, anywhere in the lease's renewal cycle
                owner.kill()
                killed = time.perf_counter()
                await until(lambda sid=sid, o=other, c=cluster: _owned_by(c, sid, o), "failover", timeout=60)
                times.append(time.perf_counter() - killed)
                live = [other, await asyncio.to_thread(cluster.start)]
        stats = latency_ms(times)
        yield metric(
            f"cluster.failover_ttl_{int(ttl)}s",
            stats["p50"],
            "ms",
            p50=stats["p50"],
            p99=stats["p99"],
            max=stats["max"],
            lease_ttl_s=ttl,
            goal_ms=(ttl + 1) * 1000,
            trials=trials,
            note="SIGKILL of the owner mid-tool until the other node holds the lease (polled every 10 ms)",
        )


async def _has_owner(cluster: Cluster, session_id: str) -> bool:
    return await lease_owner(cluster.database, session_id) is not None


async def _owned_by(cluster: Cluster, session_id: str, node: Node) -> bool:
    await asyncio.sleep(0.01)
    return await lease_owner(cluster.database, session_id) == node.node_id


@benchmark("cluster.crash_trials")
async def crash_trials(ctx: Context) -> AsyncIterator[Metric]:
    """The suite's crash trial 200 times: SIGKILL the owner at a random point of a tool-using turn; the other node
    finishes; lost acknowledged events, tools run twice, calls without results, sessions unowned after TTL + 2 s."""
    trials = ctx.size(200, 10)
    totals: dict[str, Any] = {"lost": 0, "duplicated": 0, "unanswered": 0, "unowned": 0, "not_ended": 0}
    acked = interrupted = 0
    failovers: list[float] = []
    async with AsyncExitStack() as stack:
        cluster = await _cluster(ctx, stack, lease_ttl=1.0)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        cluster.live = [await asyncio.to_thread(cluster.start), await asyncio.to_thread(cluster.start)]
        for trial in range(trials):
            result = await crash_trial(cluster, http, random.Random(1000 + trial))
            for key in ("lost", "duplicated", "unanswered", "unowned"):
                totals[key] += len(getattr(result, key))
            totals["not_ended"] += result.ended != "end_turn"
            acked += result.acked
            interrupted += result.interrupted
            failovers.append(result.failover)
            if trial % 20 == 19:
                ctx.log(f"{trial + 1} trials: {totals}")
    stats = latency_ms(failovers)
    yield metric(
        "cluster.crash_trials",
        float(sum(totals.values())),
        "violations",
        p50=stats["p50"],
        p99=stats["p99"],
        p_unit="ms from the kill until the other node drove the session (or it had finished)",
        trials=trials,
        acked_events=acked,
        interrupted_tool_calls=interrupted,
        **totals,
        goal="0 lost, 0 duplicated, 0 unanswered, 0 unowned after TTL + 2 s",
    )
