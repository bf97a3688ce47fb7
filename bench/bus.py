"""Fan-out: one session, many live readers through `stream_log`, append → delivery latency (M6)."""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import AsyncIterator

from loophost.runtime._stream import stream_log
from loophost.runtime.store import EventQuery, StoredEvent

from ._fixtures import SYNCHRONOUS, closing, make_events, new_session, open_store, prefill
from ._registry import Context, benchmark
from ._report import Metric, latency_ms, metric


@benchmark("bus.fanout")
async def fanout(ctx: Context) -> AsyncIterator[Metric]:
    """1 session x 100 `stream_log` readers while one appender commits N events, one `commit_session` each."""
    subscribers = 100
    n = ctx.size(20_000, 2_000)
    history = make_events(100, seed=20, tag="h")
    (warm_event,) = make_events(1, seed=21, tag="w")
    events = make_events(n, seed=22)
    clock = time.perf_counter

    async with open_store(ctx.fresh_path("fanout")) as (store, bus):
        session = await new_session(store, "sesn_fanout")
        await prefill(store, session, history)
        start_seq = await store.last_seq(session)
        assert start_seq is not None
        warm_seq, final_seq = start_seq + 1, start_seq + 1 + n

        # Count log reads made by the readers after they went live (catch-ups after a lag or a hole).
        log_reads = 0
        list_events = store.list_events

        async def counting_list_events(session_id: str, query: EventQuery) -> list[StoredEvent]:
            nonlocal log_reads
            if live_phase:
                log_reads += 1
            return await list_events(session_id, query)

        live_phase = False
        store.list_events = counting_list_events  # type: ignore[method-assign]

        sent: dict[str, float] = {}
        latencies: array[float] = array("d")
        ready = 0
        all_ready = asyncio.Event()
        last_delivery = 0.0
        order_errors = 0
        delivered = 0

        async def reader() -> None:
            nonlocal ready, last_delivery, order_errors, delivered
            expected = start_seq + 1
            record = latencies.append
            async with closing(stream_log(store, bus, session, after_seq=start_seq)) as stream:
                async for event in stream:
                    now = clock()
                    if event.seq != expected:
                        order_errors += 1
                    expected = event.seq + 1
                    if event.seq == warm_seq:
                        ready += 1
                        if ready == subscribers:
                            all_ready.set()
                        continue
                    record(now - sent[event.id])
                    delivered += 1
                    if event.seq >= final_seq:
                        last_delivery = max(last_delivery, now)
                        return

        readers = [asyncio.create_task(reader()) for _ in range(subscribers)]
        # One event every reader must see before timing starts: after it, all of them are in the live phase
        # (a reader not yet subscribed when it commits gets it from the log replay instead).
        await store.commit_session(session, expected_revision=None, events=(warm_event,))
        await asyncio.wait_for(all_ready.wait(), timeout=60)
        live_phase = True
        ctx.log(f"{subscribers} readers live; appending {n:,} events")

        commit = store.commit_session
        first_append = clock()
        for event in events:
            sent[event.id] = clock()
            await commit(session, expected_revision=None, events=(event,))
        appended = clock()
        await asyncio.wait_for(asyncio.gather(*readers), timeout=300)
        elapsed = last_delivery - first_append

    stats = latency_ms(latencies)
    rate = delivered / elapsed
    ctx.log(f"{rate:,.0f} deliveries/s, p50 {stats['p50']:.2f} ms p99 {stats['p99']:.2f} ms")
    yield metric(
        "bus.fanout",
        rate,
        "deliveries/s",
        p50=stats["p50"],
        p99=stats["p99"],
        p_unit="ms (append call -> delivery)",
        max_ms=stats["max"],
        goal=">= 100000 deliveries/s, p99 <= 20 ms",
        subscribers=subscribers,
        events=n,
        deliveries=delivered,
        expected_deliveries=n * subscribers,
        append_rate=n / (appended - first_append),
        order_errors=order_errors,
        catchup_reads=log_reads,
        reader="stream_log",
        synchronous=SYNCHRONOUS,
        ref="M6",
    )
