"""Opaque page cursors: base64url JSON that records the position and the order it was made for.

A cursor reused with another order is a 400, as the Claude wire specifies.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

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


def keyset(cursor: Cursor | None) -> tuple[str, str] | None:
    """A (created_at, id) position, or a 400 for a cursor that is not one (forged or from another list)."""
    if cursor is None:
        return None
    position = cursor.position
    if isinstance(position, list) and len(position) == 2 and all(isinstance(x, str) for x in position):
        return position[0], position[1]
    raise InvalidRequest("invalid page cursor", code="invalid_cursor")


def integer(cursor: Cursor | None) -> int | None:
    """An integer position (seq, version), or a 400."""
    if cursor is None:
        return None
    position = cursor.position
    if isinstance(position, int) and not isinstance(position, bool) and 0 <= position < 2**62:
        return position
    raise InvalidRequest("invalid page cursor", code="invalid_cursor")


def check_limit(limit: int | None, *, default: int, maximum: int) -> int:
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise InvalidRequest(f"limit must be between 1 and {maximum}", code="invalid_limit")
    return limit


class _Keyed(Protocol):
    """A listed row: pages of most resources are ordered by (created_at, id)."""

    @property
    def created_at(self) -> str: ...

    @property
    def id(self) -> str: ...


_Row = TypeVar("_Row", bound=_Keyed)


def cut_page(rows: list[_Row], size: int, *, descending: bool) -> tuple[list[_Row], str | None]:
    """`rows`, read as `size + 1` (the extra one only tells that a next page exists), cut to `size`; and the next
    page's cursor (the last row's created_at and id), or None on the last page."""
    if len(rows) <= size:
        return rows, None
    rows = rows[:size]
    return rows, encode([rows[-1].created_at, rows[-1].id], descending=descending)
