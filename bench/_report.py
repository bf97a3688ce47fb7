"""Percentiles and the JSON-line emitter.

Every benchmark line is one JSON object: `metric`, `value`, `unit`, `p50`, `p99` first (in that order),
then any extra keys the benchmark adds, then the environment (`python`, `cores`, `quick`). `p50`/`p99` are
latencies in milliseconds unless the line says otherwise in `p_unit`; null on a line with no distribution.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

Metric = dict[str, Any]
"""One result line, before the environment keys are added."""

_HEAD = ("metric", "value", "unit", "p50", "p99")


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) of already sorted values, linearly interpolated; None when empty."""
    n = len(sorted_values)
    if n == 0:
        return None
    if n == 1:
        return float(sorted_values[0])
    rank = (q / 100.0) * (n - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, n - 1)
    frac = rank - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def latency_ms(samples_s: Iterable[float]) -> dict[str, Any]:
    """p50/p99/max in milliseconds and the sample count, from latencies measured in seconds."""
    ordered = sorted(samples_s)
    p50 = percentile(ordered, 50)
    p99 = percentile(ordered, 99)
    return {
        "p50": None if p50 is None else p50 * 1000.0,
        "p99": None if p99 is None else p99 * 1000.0,
        "max": ordered[-1] * 1000.0 if ordered else None,
        "samples": len(ordered),
    }


def median(values: Iterable[float | None]) -> float | None:
    """Median of the non-null values; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def metric(
    name: str,
    value: float | None,
    unit: str,
    *,
    p50: float | None = None,
    p99: float | None = None,
    **extra: Any,
) -> Metric:
    """A result line: `value` in `unit`; `p50`/`p99` latencies in ms (or in `p_unit` if given in `extra`)."""
    return {"metric": name, "value": value, "unit": unit, "p50": p50, "p99": p99, **extra}


def environment() -> dict[str, Any]:
    from loophost._aio import loop_name

    return {"python": platform.python_version(), "cores": os.cpu_count(), "loop": loop_name()}


def _tidy(value: Any) -> Any:
    """Round floats for reading: whole numbers from 1,000 up, 4 significant digits below."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if abs(value) >= 1000:
            return round(value)
        return float(f"{value:.4g}")
    if isinstance(value, Mapping):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tidy(v) for v in value]
    return value


def format_line(line: Metric, env: Mapping[str, Any]) -> str:
    ordered: dict[str, Any] = {key: line.get(key) for key in _HEAD}
    for key, value in line.items():
        if key not in ordered:
            ordered[key] = value
    for key, value in env.items():
        ordered.setdefault(key, value)
    return json.dumps(_tidy(ordered), separators=(", ", ": "), ensure_ascii=False)


def emit(line: Metric, env: Mapping[str, Any], out: TextIO | None = None) -> None:
    """Write one JSON line to stdout (or `out`) and flush, so partial runs still leave their results."""
    stream = out if out is not None else sys.stdout
    stream.write(format_line(line, env) + "\n")
    stream.flush()
