"""Resource ids: a recognisable prefix plus a time-ordered random suffix (ULID-like, Crockford base32).

Time-ordered ids keep B-tree inserts local and make ids sort roughly by creation, which helps humans reading logs.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """`prefix_` + 26 chars: 48 bits of milliseconds then 80 random bits."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_encode((ms << 80) | rand, 26)}"
