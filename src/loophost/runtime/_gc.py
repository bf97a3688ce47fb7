"""Garbage-collector settings for a process that serves the runtime.

Python's cyclic collector runs every 700 container allocations by default and scans what is still alive; a turn
allocates thousands of short-lived objects (events, messages, validators' outputs), so at 100 concurrent
sessions the collector took 12-21% of the process's time in `make bench` (measured with `gc.callbacks`): every
pass scans the in-flight turns' objects, and each full pass the hundred thousand objects loaded at start-up
(pydantic-ai, FastAPI, the wire models). Freezing what start-up loaded takes it out of every pass, and a larger
young generation lets most of a turn's objects die by reference counting before any pass sees them.

A library does not change its host's collector by itself: `loophost serve` calls this once the agent core has
loaded; a service that embeds the runtime calls it after its own start-up.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Container allocations between young-generation passes (CPython's default is 700)."""


def tune_gc(young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Freeze everything alive now (start-up's objects are never scanned again) and collect young objects less
    often. Call it once start-up is done; calling it again freezes what was loaded since."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
