"""The work queue of self-hosted environments: how long a built-in tool call takes to go through a worker.

`loophost serve` runs in a subprocess; a `loophost.Worker` (the library form of `loophost worker`, without a
sandbox: the machine has none) serves the environment from this process over loopback. Each turn calls `read`
once (a file tool: the tool itself costs little, the queue's round trip is what is measured). The round trip is
read from the server's own timestamps: from the `agent.tool_use` event to the `span.model_request_start` of the
request that carries the worker's result (stream to the worker, the tool, `POST user.tool_result`, the turn
resuming).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx2

from loophost import Worker

from ._registry import Context, benchmark
from ._report import Metric, latency_ms, metric
from .http import HEADERS, loophost_server

TOOLS = [{"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "always_allow"}}}]


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def _setup(http: httpx2.AsyncClient) -> tuple[str, str, str]:
    """A self-hosted environment, one of its keys, and a session on an agent whose tools run on the worker."""
    env = (await http.post("/v1/environments", json={"name": "bench-wq", "config": {"type": "self_hosted"}})).json()
    key = (await http.post(f"/v1/environments/{env['id']}/keys")).json()["key"]
    agent = (await http.post("/v1/agents", json={"name": "bench-wq", "model": "scripted", "tools": TOOLS})).json()
    session = (await http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})).json()
    return env["id"], key, session["id"]


async def _round_trips(
    http: httpx2.AsyncClient, session_id: str, turns: int, answered: list[float] | None = None
) -> list[float]:
    """`turns` turns of one `read` call each; per turn, the seconds from `agent.tool_use` to the next request
    (and, into `answered`, to the worker's `user.tool_result`)."""
    samples: list[float] = []
    async with http.stream("GET", f"/v1/sessions/{session_id}/events/stream", timeout=None) as stream:
        lines = stream.aiter_lines()
        for i in range(turns):
            text = f'call read {{"file_path": "missing-{i}.txt"}}'
            body = {"events": [{"type": "user.message", "content": [{"type": "text", "text": text}]}]}
            (await http.post(f"/v1/sessions/{session_id}/events", json=body)).raise_for_status()
            used: float | None = None
            async for line in lines:
                if not line.startswith("data: "):
                    continue
                event: dict[str, Any] = json.loads(line[6:])
                kind = event.get("type")
                if kind == "agent.tool_use":
                    used = _ts(event["processed_at"])
                elif kind == "user.tool_result" and used is not None and answered is not None:
                    answered.append(_ts(event["processed_at"]) - used)
                elif kind == "span.model_request_start" and used is not None:
                    samples.append(_ts(event["processed_at"]) - used)
                    used = None
                elif kind == "session.status_idle" and (event.get("stop_reason") or {}).get("type") == "end_turn":
                    break
    return samples


@contextlib.asynccontextmanager
async def _serving_worker(
    ctx: Context, url: str, env_id: str, key: str, name: str, *, max_idle: float = 3600
) -> AsyncIterator[Worker]:
    """A `loophost.Worker` serving the environment from this process (no sandbox: the machine may have none),
    stopped gracefully at the end. `max_idle`: how long it stays on a session whose turn ended (it serves at most
    16 sessions at once, so a benchmark of many sessions lets each go as soon as its turn is over)."""
    worker = Worker(
        environment_id=env_id,
        environment_key=key,
        base_url=url,
        workdir=ctx.tmpdir / name,
        unsafe_no_sandbox=True,
        max_idle=max_idle,
        on_progress=lambda line: None,
    )
    async with worker:
        serving = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, 30)


@benchmark("workqueue.tool_round_trip")
async def tool_round_trip(ctx: Context) -> AsyncIterator[Metric]:
    """agent.tool_use -> loopback worker -> user.tool_result -> next model request (p50/p99), one `read` call."""
    turns = ctx.size(200, 30)
    async with loophost_server(ctx) as (url, _pid), httpx2.AsyncClient(base_url=url, headers=HEADERS) as http:
        env_id, key, session_id = await _setup(http)
        async with _serving_worker(ctx, url, env_id, key, "worker"):
            await _round_trips(http, session_id, 5)  # warm-up: the worker attaches, the engine loads
            answered: list[float] = []
            samples = await _round_trips(http, session_id, turns, answered)
    lat = latency_ms(samples)
    yield metric(
        "workqueue.tool_round_trip",
        lat["p50"],
        "ms",
        p50=lat["p50"],
        p99=lat["p99"],
        samples=lat["samples"],
        worker_answered_p50=latency_ms(answered)["p50"],
        goal="p50 <= 10 ms on loopback",
    )


async def _until_all_idle(http: httpx2.AsyncClient, session_ids: list[str]) -> None:
    """Until every session's turn ended (polled: a stream per session would be the benchmark's own load)."""
    waiting = set(session_ids)
    while waiting:
        for session_id in list(waiting):
            listed = (await http.get(f"/v1/sessions/{session_id}/events", params={"order": "desc", "limit": 1})).json()
            last = listed["data"][0] if listed["data"] else {}
            if last.get("type") == "session.status_idle" and last["stop_reason"]["type"] == "end_turn":
                waiting.discard(session_id)
        await asyncio.sleep(0.05)


@benchmark("workqueue.items_per_second")
async def items_per_second(ctx: Context) -> AsyncIterator[Metric]:
    """Work items one loopback worker completes per second: sessions created with a message whose turn makes one
    no-op tool call (`read` of a missing file), from creation (the item is queued) to the turn's end."""
    sessions = ctx.size(60, 15)
    async with loophost_server(ctx) as (url, _pid), httpx2.AsyncClient(base_url=url, headers=HEADERS) as http:
        env_id, key, warm_session = await _setup(http)
        agent = (await http.get(f"/v1/sessions/{warm_session}")).json()["agent"]["id"]
        async with _serving_worker(ctx, url, env_id, key, "worker-items", max_idle=0):
            await _round_trips(http, warm_session, 3)  # warm-up
            text = 'call read {"file_path": "missing.txt"}'
            first = {"type": "user.message", "content": [{"type": "text", "text": text}]}
            started = asyncio.get_running_loop().time()
            created = [
                (
                    await http.post(
                        "/v1/sessions",
                        json={"agent": agent, "environment_id": env_id, "initial_events": [first]},
                    )
                ).json()
                for _ in range(sessions)
            ]
            ids = [str(s["id"]) for s in created]
            await asyncio.wait_for(_until_all_idle(http, ids), 300)
            elapsed = asyncio.get_running_loop().time() - started
    yield metric(
        "workqueue.items_per_second",
        round(sessions / elapsed, 1),
        "items/s",
        items=sessions,
        seconds=round(elapsed, 2),
        note="one worker; each item is a new session whose one turn makes one no-op tool call on the worker",
    )
