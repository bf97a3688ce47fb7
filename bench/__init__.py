"""loophost's benchmark suite: `python -m bench [--only NAME[,NAME]] [--quick]` (what `make bench` runs).

Each benchmark prints one JSON line per metric to stdout; progress goes to stderr. The design note on
performance says what is measured and why. To add one, put a module in this package (its name must not start
with `_`; it is discovered automatically) and decorate an async function:

    from ._registry import Context, benchmark
    from ._report import Metric, metric

    @benchmark("agent.turn_overhead")
    async def turn_overhead(ctx: Context) -> AsyncIterator[Metric]:
        n = ctx.size(1_000, 100)          # full size, --quick size
        ...
        yield metric("agent.turn_overhead", p50_ms, "ms", p50=p50_ms, p99=p99_ms, goal="p50 <= 3 ms")
"""

from ._registry import Context, benchmark
from ._report import Metric, latency_ms, median, metric, percentile, ratio

__all__ = ["Context", "Metric", "benchmark", "latency_ms", "median", "metric", "percentile", "ratio"]
