"""The agent loop in process: turn overhead (M1 without HTTP) against the model layer, the model layer alone, bytes
written by a tool-heavy turn (M15), throughput at 100 sessions (M4), crash trials (M9).

The peer for the turn overhead is pydantic-ai's `direct.model_request` alone on the same scripted model, prompts and
history (an echo turn is one model request): what is left is what loophost adds around the model request (durable
events, checkpoints, the engine, the worker, the stream). Goal: a turn costs <= 3x that request.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

from pydantic_ai.direct import model_request
from pydantic_ai.messages import ModelMessage, ModelRequest

from loophost import wire
from loophost.runtime import Runtime, StoredEvent, ToolContext, ToolOutput, tune_gc
from loophost.runtime.models import scripted_model

from ._registry import Context, benchmark
from ._report import Metric, latency_ms, median, metric

WS = "bench"
WARM_UP = 2
"""Conversations run first and not counted (imports, caches)."""
ECHO_TURNS = 5
"""Turns per session (or per model-layer conversation): the history grows over them."""


def _message(text: str) -> wire.UserMessageParams:
    return wire.UserMessageParams.model_validate({"type": "user.message", "content": [{"type": "text", "text": text}]})


async def _setup(rt: Runtime, params: wire.AgentCreateParams | None = None) -> tuple[str, str]:
    agent = await rt.create_agent(WS, params or wire.AgentCreateParams(name="bench", model="scripted"))
    env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name=f"bench-{agent.id}"))
    return agent.id, env.id


async def _turn(rt: Runtime, session_id: str, text: str) -> float:
    """Open the session's stream (live), send a message, wait for the turn's idle on it; seconds taken, the stream's
    opening included (what a client that opens a stream per turn pays)."""
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


async def _model_layer(conversations: int, turns_each: int) -> list[float]:
    """Seconds per `direct.model_request` on the scripted model: the echo turns' prompts, the history growing."""
    model = scripted_model()
    samples: list[float] = []
    for index in range(conversations + WARM_UP):
        history: list[ModelMessage] = []
        for i in range(turns_each):
            history.append(ModelRequest.user_text_prompt(f"hello {i}"))
            started = time.perf_counter()
            response = await model_request(model, history)
            elapsed = time.perf_counter() - started
            history.append(response)
            if index >= WARM_UP:
                samples.append(elapsed)
    return samples


@benchmark("agent.model_layer")
async def model_layer(ctx: Context) -> AsyncIterator[Metric]:
    """pydantic-ai's `direct.model_request` alone on the scripted model, with the echo turns' prompts and history."""
    conversations = ctx.size(40, 8)
    stats = latency_ms(await _model_layer(conversations, ECHO_TURNS))
    yield metric(
        "agent.model_layer",
        stats["p50"],
        "ms",
        p50=stats["p50"],
        p99=stats["p99"],
        p_unit="ms per model request",
        requests=stats["samples"],
        history_turns=ECHO_TURNS,
        note="the peer of agent.turn_overhead: no loophost code runs here",
        goal="a turn <= 3x this (model layer; 0.23 ms in docs/performance)",
        ref="model layer",
    )


@benchmark("agent.turn_overhead")
async def turn_overhead(ctx: Context) -> AsyncIterator[Metric]:
    """Sequential echo turns (scripted model, no tools) vs `direct.model_request` alone on the same prompts/history."""
    sessions = ctx.size(40, 8)
    async with Runtime.from_url(ctx.fresh_path("turns")) as rt:
        agent_id, env_id = await _setup(rt)
        samples: list[float] = []
        for index in range(sessions + WARM_UP):
            session = await rt.start_session(WS, wire.SessionCreateParams(agent=agent_id, environment_id=env_id))
            timings = [await _turn(rt, session.id, f"hello {i}") for i in range(ECHO_TURNS)]
            if index == WARM_UP - 1:
                tune_gc()  # as `loophost serve` does once it has started (see runtime/_gc.py)
            if index >= WARM_UP:
                samples += timings
    # the peer, in the same run: the model layer alone, history in memory, nothing durable
    ours, theirs = latency_ms(samples), latency_ms(await _model_layer(sessions, ECHO_TURNS))
    overhead = (ours["p50"] or 0) - (theirs["p50"] or 0)
    yield metric(
        "agent.turn_overhead",
        round(overhead, 3),
        "ms",
        p50=ours["p50"],
        p99=ours["p99"],
        p_unit="ms (whole turn: send -> idle on the stream)",
        peer="pydantic_ai.direct.model_request alone, same scripted model, prompts and history",
        peer_p50=theirs["p50"],
        peer_p99=theirs["p99"],
        ratio_vs_model_layer=round((ours["p50"] or 0) / (theirs["p50"] or 1), 2),
        turns=len(samples),
        goal="ratio_vs_model_layer <= 3 (model layer); overhead p50 <= 3 ms (M1, over HTTP)",
        ref="M1",
    )


BLOB_BYTES = 100_000
"""What one call of the blob tool returns: 100 KB of plain ASCII (nothing JSON has to escape)."""
TOOL_CALLS = (5, 10, 20, 40)
"""Parallel calls in the turn; the last is the M15 figure, the others show how bytes grow with the calls."""
BLOB_TOOL = "read"
"""The name the blob tool is registered and enabled under. An agent toolset config accepts only the eight toolset
names (`wire.AgentToolName`), so the tool takes one of them; the runtime has no `Toolset` here, so no other tool
has an implementation, and the agent's `default_config` disables the rest anyway."""
_FILL = "0123456789abcdefghijklmnopqrstuvwxyz" * (BLOB_BYTES // 36 + 1)


class _Blob:
    """A built-in tool (`loophost.runtime.BuiltinTool`) answering `BLOB_BYTES` of text at once."""

    def __init__(self) -> None:
        self.name = BLOB_TOOL
        self.description = f"Return {BLOB_BYTES} bytes of text."
        self.input_schema: dict[str, Any] = {
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "required": ["n"],
        }

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        if tool_input.get("n") == -1:
            return ToolOutput(text="done")  # the turn's last step: the model's answer repeats only this result
        head = f"blob {tool_input.get('n')}:"
        return ToolOutput(text=head + _FILL[: BLOB_BYTES - len(head)])


def _blob_agent() -> wire.AgentCreateParams:
    return wire.AgentCreateParams.model_validate(
        {
            "name": "bench-blob",
            "model": "scripted",
            "tools": [
                {
                    "type": "agent_toolset_20260401",
                    "default_config": {"enabled": False},
                    "configs": [
                        {"name": BLOB_TOOL, "enabled": True, "permission_policy": {"type": "always_allow"}},
                    ],
                }
            ],
        }
    )


def _wchar(thread: int | None = None) -> int | None:
    """Bytes this process (or one of its threads) has passed to write syscalls so far (`/proc/.../io`), or None
    off Linux."""
    path = "/proc/self/io" if thread is None else f"/proc/self/task/{thread}/io"
    try:
        with open(path) as io:
            for line in io:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _since(before: int | None, thread: int | None = None) -> int | None:
    now = _wchar(thread)
    return None if before is None or now is None else now - before


def _logical_bytes(path: Path, session_id: str) -> dict[str, int]:
    """Bytes of the session's rows, read with plain sqlite3 once the runtime closed (every row is the turn's)."""
    with closing(sqlite3.connect(path)) as db:
        events, text = db.execute(
            "SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0),"
            " COALESCE(SUM(CASE WHEN type = 'agent.message' THEN LENGTH(CAST(body AS BLOB)) END), 0)"
            " FROM events WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        (checkpoints,) = db.execute(
            "SELECT COALESCE(SUM(LENGTH(body)), 0) FROM checkpoint_entries WHERE session_id = ?", (session_id,)
        ).fetchone()
    return {"events": events, "checkpoints": checkpoints, "agent_message": text}


def _check_results(bodies: list[str], calls: int, end: str | None) -> None:
    """Every call answered, without error, with all of its bytes; raise otherwise (the figure would mean nothing)."""
    complete = 0
    for body in bodies:
        event = json.loads(body)
        size = sum(len(block.get("text", "")) for block in event.get("content") or [])
        complete += not event.get("is_error") and size == BLOB_BYTES
    if end != "session.status_idle" or len(bodies) != calls + 1 or complete != calls:
        raise RuntimeError(f"tool turn ended with {end}: {len(bodies)} results, {complete} complete of {calls}")


async def _tool_turn(ctx: Context, calls: int) -> dict[str, Any]:
    """One turn calling the blob tool `calls` times in parallel, on a fresh database; the bytes it wrote."""
    path = ctx.fresh_path(f"tool-turn-{calls}")
    # a last step with one small call: the scripted model's answer lists the results of its last step only, so
    # the turn's own text stays small and what is measured is how the tool output is stored
    text = "\n".join(f'call {BLOB_TOOL} {{"n": {i}}}' for i in range(calls)) + f'\nthen\ncall {BLOB_TOOL} {{"n": -1}}'
    async with Runtime.from_url(path, builtin_tools={BLOB_TOOL: _Blob()}) as rt:
        agent_id, env_id = await _setup(rt, _blob_agent())
        session = await rt.start_session(WS, wire.SessionCreateParams(agent=agent_id, environment_id=env_id))
        after = await rt.store.last_seq(session.id) or 0
        results: list[str] = []
        end: str | None = None

        async def play() -> None:
            nonlocal end
            await rt.send_events(WS, session.id, [_message(text)])
            async for event in rt.stream_events(WS, session.id, after_seq=after):
                if not isinstance(event, StoredEvent):
                    continue
                if event.type == "agent.tool_result":
                    results.append(event.body)
                elif event.type in ("session.status_idle", "session.status_terminated"):
                    end = event.type
                    return

        writer = threading.get_native_id()  # with synchronous=NORMAL the writer commits on the event loop's thread
        before, writer_before = _wchar(), _wchar(writer)
        started = time.perf_counter()
        await asyncio.wait_for(play(), timeout=600)
        elapsed = time.perf_counter() - started
        physical = _since(before)
        committed = _since(writer_before, writer)
    through_close = _since(before)
    _check_results(results, calls, end)
    logical = _logical_bytes(path, session.id)
    output = calls * BLOB_BYTES
    logical_total = logical["events"] + logical["checkpoints"]
    return {
        "k": calls,
        "tool_output_bytes": output,
        "physical_bytes": physical,
        "committed_bytes": committed,
        "logical_bytes": logical_total,
        "ratio": None if committed is None else round(committed / output, 2),
        "process_ratio": None if physical is None else round(physical / output, 2),
        "logical_ratio": round(logical_total / output, 2),
        "events_bytes": logical["events"],
        "checkpoint_bytes": logical["checkpoints"],
        "agent_message_bytes": logical["agent_message"],
        "physical_through_close_bytes": through_close,
        "physical_per_call": None if physical is None else physical // calls,
        "ratio_vs_produced": None if physical is None else round(physical / (output + logical["agent_message"]), 2),
        "turn_ms": round(elapsed * 1000, 1),
    }


def _growth_exponent(rows: list[dict[str, Any]], key: str) -> float | None:
    """Least-squares slope of log(bytes) on log(k): about 1 when bytes grow linearly with the calls, 2 quadratically."""
    points = [(math.log(r["k"]), math.log(r[key])) for r in rows if r.get(key)]
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return round(sum((x - mean_x) * (y - mean_y) for x, y in points) / spread, 2) if spread else None


@benchmark("agent.tool_turn_bytes")
async def tool_turn_bytes(ctx: Context) -> AsyncIterator[Metric]:
    """Bytes written by one turn of 40 parallel built-in tool calls of 100 KB each, vs the tool output (M15)."""
    await _tool_turn(ctx, 1)  # warm up: first imports (and any .pyc they write) stay out of the figures
    rows = []
    for calls in TOOL_CALLS:
        rows.append(await _tool_turn(ctx, calls))
        ctx.log(f"k={calls}: {rows[-1]}")
    top = rows[-1]
    yield metric(
        "agent.tool_turn_bytes",
        top["ratio"],
        "x tool output bytes (written by the committing writer: the WAL)",
        tool_calls=top["k"],
        tool_output_bytes=top["tool_output_bytes"],
        committed_bytes=top["committed_bytes"],
        physical_bytes=top["physical_bytes"],
        process_ratio=top["process_ratio"],
        logical_bytes=top["logical_bytes"],
        logical_ratio=top["logical_ratio"],
        events_bytes=top["events_bytes"],
        checkpoint_bytes=top["checkpoint_bytes"],
        agent_message_bytes=top["agent_message_bytes"],
        ratio_vs_produced=top["ratio_vs_produced"],
        produced="tool output + the agent.message bodies (the scripted model's answer repeats every result)",
        physical_through_close_bytes=top["physical_through_close_bytes"],
        turn_ms=top["turn_ms"],
        per_k=[
            {
                key: row[key]
                for key in ("k", "committed_bytes", "physical_bytes", "physical_per_call", "logical_bytes", "ratio")
            }
            for row in rows
        ],
        physical_growth_exponent=_growth_exponent(rows, "physical_bytes"),
        logical_growth_exponent=_growth_exponent(rows, "logical_bytes"),
        committed="wchar growth of the writer's thread (the event loop's: commits are applied there) from send to idle",
        physical="wchar growth of the whole process (the WAL, plus the checkpointer copying it into the database)",
        logical="bytes of the session's events bodies + checkpoint_entries bodies, read after close",
        goal="committed <= 2x tool output bytes (M15); bytes linear in the calls (exponent ~1)",
        ref="M15",
    )


async def _throughput(ctx: Context, database: str | Path, concurrency: int = 100) -> tuple[float, list[float]]:
    """Turns/s with `concurrency` sessions each looping echo turns at once on a runtime over `database`; and
    the turns' latencies."""
    turns_each = ctx.size(10, 3)
    async with Runtime.from_url(database) as rt:
        agent_id, env_id = await _setup(rt)
        ids = [
            (await rt.start_session(WS, wire.SessionCreateParams(agent=agent_id, environment_id=env_id))).id
            for _ in range(concurrency)
        ]
        await _turn(rt, ids[0], "warm up")
        tune_gc()  # as `loophost serve` does once it has started (see runtime/_gc.py)
        latencies: list[float] = []

        async def loop(session_id: str) -> None:
            for i in range(turns_each):
                latencies.append(await _turn(rt, session_id, f"turn {i}"))

        started = time.perf_counter()
        await asyncio.gather(*(loop(s) for s in ids))
        elapsed = time.perf_counter() - started
    return round(len(latencies) / elapsed, 1), latencies


@benchmark("agent.throughput")
async def throughput(ctx: Context) -> AsyncIterator[Metric]:
    """Aggregate turns/s with 100 sessions each looping echo turns concurrently."""
    rate, latencies = await _throughput(ctx, ctx.fresh_path("throughput"))
    stats = latency_ms(latencies)
    yield metric(
        "agent.throughput",
        rate,
        "turns/s",
        p50=stats["p50"],
        p99=stats["p99"],
        p_unit="ms per turn",
        sessions=100,
        turns=len(latencies),
        goal=">= 1000 turns/s at 100 sessions (M4)",
        ref="M4",
    )


@benchmark("agent.throughput_postgres")
async def throughput_postgres(ctx: Context) -> AsyncIterator[Metric]:
    """agent.throughput on one node over PostgreSQL against the same on SQLite, in the same run.

    The PostgreSQL server is a throwaway one on this machine (tests/_postgres.py: unix socket, fsync off, as
    SQLite's default `synchronous=NORMAL` does not wait for the disk either), with the store's default pool."""
    from tests._postgres import PostgresServer

    sqlite_rate, sqlite_latencies = await _throughput(ctx, ctx.fresh_path("throughput"))
    server = await asyncio.to_thread(PostgresServer.start)
    try:
        url = await asyncio.to_thread(server.create_database, "bench")
        rate, latencies = await _throughput(ctx, url)
    finally:
        await asyncio.to_thread(server.stop)
    stats, sqlite_stats = latency_ms(latencies), latency_ms(sqlite_latencies)
    yield metric(
        "agent.throughput_postgres",
        rate,
        "turns/s",
        p50=stats["p50"],
        p99=stats["p99"],
        p_unit="ms per turn",
        sqlite=sqlite_rate,
        sqlite_p50=sqlite_stats["p50"],
        sqlite_p99=sqlite_stats["p99"],
        vs_sqlite=round(rate / sqlite_rate, 2) if sqlite_rate else None,
        sessions=100,
        turns=len(latencies),
        note="one node; the PostgreSQL server on the same machine, over a unix socket",
    )


@benchmark("agent.crash_trials")
async def crash_trials(ctx: Context) -> AsyncIterator[Metric]:
    """SIGKILL a process running tool-using sessions at random points; count lost acked events and re-run tools."""
    from tests.runtime.engine._crash import Zygote, delays, recover_and_check

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
