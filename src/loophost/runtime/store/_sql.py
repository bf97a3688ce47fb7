"""SQL the two backends share, written once with the backend's parameter mark (`?` for SQLite, `%s` for psycopg)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._records import ListQuery, SessionRow, TokenCounts


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


def session_row(r: Sequence[Any]) -> SessionRow:
    """A session row selected as the columns of `SessionRow` in field order, the four token counters last."""
    workspace, session_id, agent_id, version, env_id, status, created_at, archived_at, revision, last_seq = r[:10]
    body, internal, wants_worker, updated_at = r[10:14]
    return SessionRow(
        workspace,
        session_id,
        agent_id,
        version,
        env_id,
        status,
        created_at,
        archived_at,
        revision,
        last_seq,
        body,
        internal,
        bool(wants_worker),
        updated_at,
        TokenCounts(*r[14:]),
    )
