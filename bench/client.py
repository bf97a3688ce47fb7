"""The client: its overhead per turn over the raw calls it makes, on Local and over HTTP, and import time.

Each overhead pairs a client turn (`Session.send`: play, dedupe, normalize, accumulate) with a raw turn (the
same calls written by hand: send the user.message with an idempotency key, as the client does, and read the
stream until idle) on twin sessions, alternating, so both see the same machine noise; the figure is the median
of the paired differences.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2

import loophost
from loophost import wire
from loophost.client import Session

from ._registry import Context, benchmark
from ._report import Metric, latency_ms, metric
from .http import HEADERS, KEY, loophost_server

PER_SESSION = 20


def _message(i: int) -> dict[str, Any]:
    return {"type": "user.message", "content": [{"type": "text", "text": f"hello {i}"}]}


async def _raw_local_turn(rt: Any, session_id: str, stream: Any, i: int) -> None:
    params = wire.SendEventsParams.model_validate({"events": [_message(i)]})
    await rt.send_events("default", session_id, params.events, idempotency_key=uuid.uuid4().hex)
    async for item in stream:
        if item.type == "session.status_idle":
            return


async def _pairs(
    ctx: Context, raw_turn: Any, new_raw: Any, client_turn: Any, new_client: Any
) -> tuple[list[float], list[float]]:
    """Alternate raw and client turns on fresh twin sessions every PER_SESSION turns."""
    rounds = ctx.size(25, 3)
    raw: list[float] = []
    client: list[float] = []
    for round_index in range(rounds + 1):  # the first round warms up and is dropped
        raw_state = await new_raw()
        client_state = await new_client()
        warm = round_index == 0
        batch_raw: list[float] = []
        batch_client: list[float] = []
        try:
            for i in range(PER_SESSION):
                started = time.perf_counter()
                await raw_turn(raw_state, i)
                batch_raw.append(time.perf_counter() - started)
                started = time.perf_counter()
                await client_turn(client_state, i)
                batch_client.append(time.perf_counter() - started)
        finally:
            for state in (raw_state, client_state):
                closer = state.get("close")
                if closer is not None:
                    await closer()
        if not warm:
            raw += batch_raw
            client += batch_client
    return raw, client


def _overhead_metric(name: str, raw: list[float], client: list[float], host: str) -> Metric:
    """The value is the median of the paired differences (client turn i minus raw turn i, run back to back),
    which cancels the machine's drift better than a difference of medians (also reported)."""
    ours, peer = latency_ms(client), latency_ms(raw)
    paired = statistics.median(c - r for c, r in zip(client, raw, strict=True)) * 1000 if client else None
    return metric(
        name,
        round(paired, 3) if paired is not None else None,
        "ms per turn",
        p50=ours["p50"],
        p99=ours["p99"],
        raw_p50=peer["p50"],
        raw_p99=peer["p99"],
        difference_of_medians=round(ours["p50"] - peer["p50"], 3) if ours["p50"] and peer["p50"] else None,
        turns=len(client),
        ratio_vs_raw=round(ours["p50"] / peer["p50"], 4) if ours["p50"] and peer["p50"] else None,
        peer=f"the same echo turn as raw calls on {host} (send user.message, read the stream to idle)",
        goal="<= 0.3 ms over the raw calls",
        ref="client",
    )


@benchmark("client.turn_overhead_local")
async def turn_overhead_local(ctx: Context) -> AsyncIterator[Metric]:
    """Client turn vs raw runtime calls, on the embedded runtime (Local, SQLite file)."""
    async with loophost.Local(ctx.fresh_path("local")) as host:
        rt = host.runtime
        agent = await rt.create_agent("default", wire.AgentCreateParams(name="bench", model="scripted"))
        env = await rt.create_environment("default", wire.EnvironmentCreateParams(name="bench-local"))

        async def new_raw() -> dict[str, Any]:
            session = await rt.start_session("default", wire.SessionCreateParams(agent=agent.id, environment_id=env.id))
            stream = await rt.open_stream("default", session.id)
            return {"id": session.id, "stream": stream, "close": stream.aclose}

        async def raw_turn(state: dict[str, Any], i: int) -> None:
            await _raw_local_turn(rt, state["id"], state["stream"], i)

        async def new_client() -> dict[str, Any]:
            session = await Session(host, agent_id=agent.id, environment_id=env.id).open()
            return {"session": session, "close": session.close}

        async def client_turn(state: dict[str, Any], i: int) -> None:
            await state["session"].send(f"hello {i}")

        raw, client = await _pairs(ctx, raw_turn, new_raw, client_turn, new_client)
    yield _overhead_metric("client.turn_overhead_local", raw, client, "the runtime in-process")


@benchmark("client.turn_overhead_http")
async def turn_overhead_http(ctx: Context) -> AsyncIterator[Metric]:
    """Client turn (ClaudeManagedAgents provider) vs raw httpx2 calls, against `loophost serve`."""
    async with loophost_server(ctx) as (url, _pid), httpx2.AsyncClient(base_url=url, headers=HEADERS) as http:
        agent = (await http.post("/v1/agents", json={"name": "bench", "model": "scripted"})).json()
        env = (await http.post("/v1/environments", json={"name": "bench-http"})).json()
        body = {"agent": agent["id"], "environment_id": env["id"]}
        provider = loophost.ClaudeManagedAgents(api_key=KEY, base_url=url)

        async def new_raw() -> dict[str, Any]:
            session = (await http.post("/v1/sessions", json=body)).json()
            context = http.stream("GET", f"/v1/sessions/{session['id']}/events/stream", timeout=None)
            response = await context.__aenter__()

            async def close() -> None:
                await context.__aexit__(None, None, None)

            return {"id": session["id"], "lines": response.aiter_lines(), "close": close}

        async def raw_turn(state: dict[str, Any], i: int) -> None:
            key = {"Idempotency-Key": uuid.uuid4().hex}  # the client keys every send, so it can resend safely
            sent = await http.post(f"/v1/sessions/{state['id']}/events", json={"events": [_message(i)]}, headers=key)
            sent.raise_for_status()
            async for line in state["lines"]:
                if line.startswith("data: ") and json.loads(line[6:]).get("type") == "session.status_idle":
                    return

        async def new_client() -> dict[str, Any]:
            session = await Session(provider, agent_id=agent["id"], environment_id=env["id"]).open()
            return {"session": session, "close": session.close}

        async def client_turn(state: dict[str, Any], i: int) -> None:
            await state["session"].send(f"hello {i}")

        async with provider:
            raw, client = await _pairs(ctx, raw_turn, new_raw, client_turn, new_client)
    yield _overhead_metric("client.turn_overhead_http", raw, client, "a loophost server over HTTP")


def _import_ms(code: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


@benchmark("client.import_time")
async def import_time(ctx: Context) -> AsyncIterator[Metric]:
    """`import loophost` (and the client API, and the Claude provider) in a fresh interpreter, minus bare startup."""
    runs = ctx.size(21, 5)
    cases = {
        "import loophost": "import loophost",
        "from loophost import run, tool, Local": "from loophost import run, tool, Local",
        "+ ClaudeManagedAgents (httpx2)": "from loophost import run, tool, ClaudeManagedAgents",
    }
    baseline: list[float] = []
    measured: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):  # interleaved, so drift hits every case alike
        baseline += _import_ms("pass", 1)
        for name, code in cases.items():
            measured[name] += _import_ms(code, 1)
    bare = statistics.median(baseline)
    for name, samples in measured.items():
        value = round(statistics.median(samples) - bare, 1)
        yield metric(
            "client.import_time",
            value,
            "ms",
            case=name,
            interpreter_startup_ms=round(bare, 1),
            runs=runs,
            goal="<= 150 ms for import loophost" if name == "import loophost" else None,
            ref="client",
        )
