"""SQL the two backends share, written once with the backend's parameter mark (`?` for SQLite, `%s` for psycopg)."""

from __future__ import annotations

from typing import Any

from ._records import ListQuery


def keyset(query: ListQuery, where: list[str], args: list[Any], *, mark: str) -> str:
    """Add the created_at filters and the (created_at, id) cursor; return the ORDER BY … LIMIT tail."""
    for op, value in (
        (">", query.created_gt),
        (">=", query.created_gte),
        ("<", query.created_lt),
        ("<=", query.created_lte),
    ):
        if value is not None:
            where.append(f"created_at {op} {mark}")
            args.append(value)
    if not query.include_archived:
        where.append("archived_at IS NULL")
    direction = "DESC" if query.descending else "ASC"
    if query.after is not None:
        where.append(f"(created_at, id) {'<' if query.descending else '>'} ({mark}, {mark})")
        args.extend(query.after)
    args.append(query.limit)
    return f" ORDER BY created_at {direction}, id {direction} LIMIT {mark}"
