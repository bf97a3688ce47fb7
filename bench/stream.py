"""Replay: a reader reconnecting with `after_seq=0` to a 10k-event session through `stream_log` (M8)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from loophost.runtime._stream import REPLAY_PAGE, stream_log

from ._fixtures import SYNCHRONOUS, closing, make_events, mean_body_bytes, new_session, open_store, prefill
from ._registry import Context, benchmark
from ._report import Metric, latency_ms, median, metric


@benchmark("stream.replay")
async def replay(ctx: Context) -> AsyncIterator[Metric]:
    """Full replay of a 10k-event log (events/s, median of runs) and time to first event (p50/p99)."""
    n = 10_000
    runs = ctx.size(5, 3)
    first_event_runs = ctx.size(300, 50)
    events = make_events(n, seed=30)
    clock = time.perf_counter

    async with open_store(ctx.fresh_path("replay")) as (store, bus):
        session = await new_session(store, "sesn_replay")
        await prefill(store, session, events)

        async def full_replay() -> tuple[float, float, int]:
            started = clock()
            first = 0.0
            count = 0
            async with closing(stream_log(store, bus, session, after_seq=0)) as stream:
                async for event in stream:
                    if count == 0:
                        first = clock() - started
                    count += 1
                    if event.seq >= n:
                        break
            return clock() - started, first, count

        async def first_event() -> float:
            started = clock()
            async with closing(stream_log(store, bus, session, after_seq=0)) as stream:
                async for _ in stream:
                    break
            return clock() - started

        await full_replay()  # warm-up: reader connections opened, pages cached
        rates: list[float] = []
        firsts: list[float] = []
        for i in range(runs):
            elapsed, first, count = await full_replay()
            if count != n:
                raise RuntimeError(f"replay delivered {count} events, expected {n}")
            rates.append(n / elapsed)
            firsts.append(first)
            ctx.log(f"run {i + 1}/{runs}: {n / elapsed:,.0f} events/s, first event {first * 1000:.2f} ms")
        first_samples = [await first_event() for _ in range(first_event_runs)]

    rate = median(rates)
    first_stats = latency_ms(first_samples)
    yield metric(
        "stream.replay",
        rate,
        "events/s",
        p50=None,
        p99=None,
        goal=">= 100000 events/s",
        events=n,
        body_bytes=mean_body_bytes(events),
        page_size=REPLAY_PAGE,
        runs=rates,
        first_event_ms_in_runs=[f * 1000 for f in firsts],
        synchronous=SYNCHRONOUS,
        ref="M8",
    )
    yield metric(
        "stream.replay_first_event",
        first_stats["p50"],
        "ms",
        p50=first_stats["p50"],
        p99=first_stats["p99"],
        p_unit="ms",
        goal="<= 5 ms",
        samples=first_stats["samples"],
        events_in_log=n,
        page_size=REPLAY_PAGE,
        ref="M8",
    )
