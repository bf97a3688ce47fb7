"""Resource ids: a recognisable prefix plus a time-ordered random suffix.

`prefix_` + 32 hex digits: 48 bits of milliseconds then 80 random bits. Time-ordered ids keep B-tree inserts
local (the log's id index grows at its end) and sort roughly by creation, which helps humans reading logs.
Hex keeps minting cheap: ids are made on the hot path of every event.
"""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"
