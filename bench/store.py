"""Durable append through `commit_session`, the runtime's write path: group-commit throughput against plain
sqlite3, per-event-commit contrast, latency against history length (M5)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from loophost.runtime.store import NewEvent, StoredEvent
from loophost.runtime.store._sqlite_engine import connect
from loophost.runtime.store._sqlite_schema import migrate

from ._fixtures import (
    SYNCHRONOUS,
    append_concurrently,
    make_events,
    mean_body_bytes,
    new_session,
    new_sessions,
    open_store,
    prefill,
    split,
)
from ._registry import Context, benchmark
from ._report import Metric, latency_ms, median, metric, ratio


@benchmark("store.append_throughput")
async def append_throughput(ctx: Context) -> AsyncIterator[Metric]:
    """Events/s committed: many concurrent appenders (group commit) vs one appender (one commit per event)."""
    repeats = ctx.size(3, 1)

    # One appender awaiting each append: every event is its own transaction.
    per_event_n = ctx.size(10_000, 2_000)
    per_event = make_events(per_event_n, seed=1)
    warm = make_events(ctx.size(1_000, 200), seed=2, tag="w")
    rates: list[float] = []
    p50s: list[float | None] = []
    p99s: list[float | None] = []
    for rep in range(repeats):
        async with open_store(ctx.fresh_path("per-event")) as (store, _bus):
            session = await new_session(store, "sesn_single")
            await append_concurrently(store, [(session, warm)])
            elapsed, lat = await append_concurrently(store, [(session, per_event)])
        stats = latency_ms(lat)
        rates.append(per_event_n / elapsed)
        p50s.append(stats["p50"])
        p99s.append(stats["p99"])
        ctx.log(f"per-event commit, repeat {rep + 1}/{repeats}: {per_event_n / elapsed:,.0f} events/s")
    per_event_rate = median(rates)
    yield metric(
        "store.append_throughput_per_event_commit",
        per_event_rate,
        "events/s",
        p50=median(p50s),
        p99=median(p99s),
        p_unit="ms",
        events=per_event_n,
        appenders=1,
        sessions=1,
        repeats=repeats,
        runs=rates,
        synchronous=SYNCHRONOUS,
        ref="M5",
    )

    # Many appenders, each awaiting its own ack: the writer batches whatever is queued into one transaction.
    # Measured over 100 sessions and over 1. The peer is plain sqlite3 on the same schema writing the same rows in
    # the same transactions: every batch our writer committed (seen by a commit listener, once per transaction)
    # replayed as one transaction of one INSERT: what SQLite itself can do with this work.
    tasks = 200
    total = ctx.size(100_000, 20_000)
    events = make_events(total, seed=3)
    warm = make_events(ctx.size(4_000, 1_000), seed=4, tag="w")
    body_bytes = mean_body_bytes(events)
    for sessions, per_append in ((100, 1), (1, 1), (100, 4)):
        rates, p50s, p99s, peers, batch_sizes = [], [], [], [], []
        for rep in range(repeats):
            batches: list[Sequence[StoredEvent]] = []
            async with open_store(ctx.fresh_path("group")) as (store, _bus):
                store.add_commit_listener(batches.append)
                ids = await new_sessions(store, sessions)
                batches.clear()
                await append_concurrently(store, _plan(ids, warm, tasks), per_append=per_append)
                warm_batches = batches[:]
                batches.clear()
                elapsed, lat = await append_concurrently(store, _plan(ids, events, tasks), per_append=per_append)
            peers.append(await asyncio.to_thread(_raw_sqlite_rate, ctx.fresh_path("raw"), warm_batches, batches))
            batch_sizes.append(total / len(batches))
            stats = latency_ms(lat)
            rates.append(total / elapsed)
            p50s.append(stats["p50"])
            p99s.append(stats["p99"])
            ctx.log(
                f"group commit over {sessions} sessions, repeat {rep + 1}/{repeats}: {total / elapsed:,.0f} events/s "
                f"(plain sqlite3 {peers[-1]:,.0f}/s, same {len(batches):,} transactions of {batch_sizes[-1]:.0f} "
                f"events on average), ack p50 {stats['p50']:.2f} ms p99 {stats['p99']:.2f} ms"
            )
        group_rate = median(rates)
        peer_rate = median(peers)
        name = "store.append_throughput_group_commit"
        if sessions == 1:
            name += "_one_session"
        if per_append > 1:
            name += f"_{per_append}_per_append"
        yield metric(
            name,
            group_rate,
            "events/s",
            p50=median(p50s),
            p99=median(p99s),
            p_unit="ms",
            ratio_vs_per_event=ratio(group_rate, per_event_rate),
            peer="plain sqlite3, same schema, same rows in the same transactions as our writer's batches, no asyncio",
            peer_events_per_s=peer_rate,
            ratio_vs_sqlite=ratio(group_rate, peer_rate),
            goal=">= 50000 events/s; ratio_vs_sqlite >= 0.8",
            mean_events_per_transaction=median(batch_sizes),
            events=total,
            appenders=tasks,
            sessions=sessions,
            events_per_append=per_append,
            body_bytes=body_bytes,
            repeats=repeats,
            runs=rates,
            synchronous=SYNCHRONOUS,
            ref="M5",
        )


def _raw_sqlite_rate(
    path: Path, warm: Sequence[Sequence[StoredEvent]], batches: Sequence[Sequence[StoredEvent]]
) -> float:
    """Events/s plain sqlite3 commits writing `batches`, one transaction each (after `warm`, untimed)."""
    conn = connect(str(path), synchronous=SYNCHRONOUS)
    migrate(conn)

    def write(rows: Sequence[StoredEvent]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO events (session_id, seq, id, type, processed_at, body) VALUES (?,?,?,?,?,?)", rows
        )
        conn.execute("COMMIT")

    for rows in warm:
        write(rows)
    started = time.perf_counter()
    for rows in batches:
        write(rows)
    elapsed = time.perf_counter() - started
    conn.close()
    return sum(len(rows) for rows in batches) / elapsed


def _plan(session_ids: Sequence[str], events: Sequence[NewEvent], tasks: int) -> list[tuple[str, Sequence[NewEvent]]]:
    """`tasks` appenders spread round-robin over the sessions, each with its slice of `events`."""
    return [(session_ids[i % len(session_ids)], part) for i, part in enumerate(split(events, tasks))]


@benchmark("store.append_latency_vs_history")
async def append_latency_vs_history(ctx: Context) -> AsyncIterator[Metric]:
    """Append p50/p99 on a session whose log holds few vs many events, under one small concurrent load."""
    repeats = ctx.size(3, 1)
    short_n, long_n = 1_000, ctx.size(100_000, 10_000)
    appenders = 8
    load_n = ctx.size(4_000, 1_000)
    prefills = {short_n: make_events(short_n, seed=10), long_n: make_events(long_n, seed=11)}
    load = make_events(load_n, seed=12, tag="l")
    warm = make_events(appenders * 25, seed=13, tag="w")
    results: dict[int, list[dict[str, float | None]]] = {short_n: [], long_n: []}
    for rep in range(repeats):
        for history in (short_n, long_n):  # interleaved, so machine noise hits both cases alike
            async with open_store(ctx.fresh_path(f"history-{history}")) as (store, _bus):
                session = await new_session(store, "sesn_target")
                await prefill(store, session, prefills[history])
                await append_concurrently(store, [(session, part) for part in split(warm, appenders)])
                _, lat = await append_concurrently(store, [(session, part) for part in split(load, appenders)])
            stats = latency_ms(lat)
            results[history].append(stats)
            ctx.log(
                f"repeat {rep + 1}/{repeats}, history {history:,}: p50 {stats['p50']:.2f} ms p99 {stats['p99']:.2f} ms"
            )

    summary: dict[int, tuple[float | None, float | None]] = {}
    for name, history in (("short", short_n), ("long", long_n)):
        p50 = median(r["p50"] for r in results[history])
        p99 = median(r["p99"] for r in results[history])
        summary[history] = (p50, p99)
        yield metric(
            f"store.append_latency_{name}_history",
            p50,
            "ms",
            p50=p50,
            p99=p99,
            p_unit="ms",
            history_events=history,
            appenders=appenders,
            appends=load_n,
            repeats=repeats,
            synchronous=SYNCHRONOUS,
            ref="M5",
        )
    (s50, s99), (l50, l99) = summary[short_n], summary[long_n]
    yield metric(
        "store.append_latency_vs_history",
        ratio(l99, s99),
        "x",
        p50=ratio(l50, s50),
        p99=ratio(l99, s99),
        p_unit="x (long/short)",
        goal="flat: p99 ratio ~ 1",
        short_history_events=short_n,
        long_history_events=long_n,
        short_p50_ms=s50,
        short_p99_ms=s99,
        long_p50_ms=l50,
        long_p99_ms=l99,
        repeats=repeats,
        ref="M5",
    )
