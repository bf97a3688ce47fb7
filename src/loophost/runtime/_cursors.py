"""Opaque page cursors: base64url JSON that records the position and the order it was made for.

A cursor reused with another order is a 400, as the Claude wire specifies.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidRequest

PAGE_PREFIX = "page_"


@dataclass(frozen=True, slots=True)
class Cursor:
    position: Any
    descending: bool
    backwards: bool = False
    """True for a `prev_page` cursor: walk towards the start of the ordering."""


def encode(position: Any, *, descending: bool, backwards: bool = False) -> str:
    raw = json.dumps({"p": position, "d": descending, "b": backwards}, separators=(",", ":")).encode()
    return PAGE_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str | None, *, descending: bool) -> Cursor | None:
    if token is None or token == "":
        return None
    body = token.removeprefix(PAGE_PREFIX)
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        cursor = Cursor(data["p"], bool(data["d"]), bool(data.get("b", False)))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidRequest(f"invalid page cursor {token!r}", code="invalid_cursor") from exc
    if cursor.descending != descending:
        raise InvalidRequest(
            "this page cursor was made for the other order; pass the same `order` as the first request",
            code="cursor_order_mismatch",
        )
    return cursor


def check_limit(limit: int | None, *, default: int, maximum: int) -> int:
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise InvalidRequest(f"limit must be between 1 and {maximum}", code="invalid_limit")
    return limit
