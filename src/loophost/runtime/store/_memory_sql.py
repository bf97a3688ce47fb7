"""The SQL of the memory tables that both backends share, written once with `{p}` for a parameter mark.

Both backends order text by bytes (SQLite's BINARY collation, `COLLATE "C"` on PostgreSQL), so a path prefix is a
range: `prefix <= path < upper(prefix)`, where `upper` replaces the trailing `/` (0x2F) with `0` (0x30).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from ._memory import MemoryRow, MemoryStoreRow, MemoryVersionRow, VersionQuery

STORE_COLS = "workspace, id, created_at, archived_at, body"
MEMORY_FIELDS = tuple(f.name for f in fields(MemoryRow))
MEMORY_COLS = ", ".join(MEMORY_FIELDS)
MEMORY_BASIC_COLS = MEMORY_COLS.replace("content,", "NULL,", 1)
VERSION_FIELDS = tuple(f.name for f in fields(MemoryVersionRow))
VERSION_COLS = ", ".join(VERSION_FIELDS)
VERSION_BASIC_COLS = VERSION_COLS.replace("content,", "NULL,", 1)


def prefix_upper(prefix: str) -> str:
    """The least string above every path that starts with `prefix` (which ends with `/`)."""
    return prefix[:-1] + "0"


def store_row(r: Sequence[Any]) -> MemoryStoreRow:
    return MemoryStoreRow(*r)


def memory_row(r: Sequence[Any]) -> MemoryRow:
    return MemoryRow(*r)


def version_row(r: Sequence[Any]) -> MemoryVersionRow:
    return MemoryVersionRow(*r)


def memory_values(row: MemoryRow) -> tuple[Any, ...]:
    return tuple(getattr(row, n) for n in MEMORY_FIELDS)


def version_values(row: MemoryVersionRow) -> tuple[Any, ...]:
    return tuple(getattr(row, n) for n in VERSION_FIELDS)


def marks(n: int, p: str) -> str:
    return ", ".join([p] * n)


def list_stores_sql(
    p: str,
    workspace: str,
    *,
    after: tuple[str, str] | None,
    limit: int,
    include_archived: bool,
    created_gte: str | None,
    created_lte: str | None,
) -> tuple[str, list[Any]]:
    where, args = ["workspace = " + p], [workspace]
    if not include_archived:
        where.append("archived_at IS NULL")
    if created_gte is not None:
        where.append("created_at >= " + p)
        args.append(created_gte)
    if created_lte is not None:
        where.append("created_at <= " + p)
        args.append(created_lte)
    if after is not None:
        where.append(f"(created_at > {p} OR (created_at = {p} AND id > {p}))")
        args += [after[0], after[0], after[1]]
    sql = f"SELECT {STORE_COLS} FROM memory_stores WHERE {' AND '.join(where)} ORDER BY created_at, id LIMIT {p}"
    return sql, [*args, limit]


def list_memories_sql(
    p: str,
    workspace: str,
    store_id: str,
    *,
    prefix: str,
    after: str | None,
    at_or_after: str | None,
    limit: int,
    with_content: bool,
) -> tuple[str, list[Any]]:
    where = [f"store_id = {p}", f"workspace = {p}", f"path >= {p}", f"path < {p}"]
    args: list[Any] = [store_id, workspace, prefix, prefix_upper(prefix)]
    if after is not None:
        where.append(f"path > {p}")
        args.append(after)
    if at_or_after is not None:
        where.append(f"path >= {p}")
        args.append(at_or_after)
    cols = MEMORY_COLS if with_content else MEMORY_BASIC_COLS
    sql = f"SELECT {cols} FROM memories WHERE {' AND '.join(where)} ORDER BY path LIMIT {p}"
    return sql, [*args, limit]


def list_versions_sql(p: str, workspace: str, store_id: str, q: VersionQuery) -> tuple[str, list[Any]]:
    where = [f"store_id = {p}", f"workspace = {p}"]
    args: list[Any] = [store_id, workspace]
    for column, value in (
        ("memory_id", q.memory_id),
        ("operation", q.operation),
        ("session_id", q.session_id),
        ("api_key_id", q.api_key_id),
    ):
        if value is not None:
            where.append(f"{column} = {p}")
            args.append(value)
    if q.created_gte is not None:
        where.append(f"created_at >= {p}")
        args.append(q.created_gte)
    if q.created_lte is not None:
        where.append(f"created_at <= {p}")
        args.append(q.created_lte)
    if q.before is not None:
        where.append(f"(created_at < {p} OR (created_at = {p} AND id < {p}))")
        args += [q.before[0], q.before[0], q.before[1]]
    cols = VERSION_COLS if q.with_content else VERSION_BASIC_COLS
    sql = f"SELECT {cols} FROM memory_versions WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT {p}"
    return sql, [*args, q.limit]


def insert_version_sql(p: str) -> str:
    return f"INSERT INTO memory_versions ({VERSION_COLS}) VALUES ({marks(len(VERSION_FIELDS), p)})"


def insert_memory_sql(p: str) -> str:
    return f"INSERT INTO memories ({MEMORY_COLS}) VALUES ({marks(len(MEMORY_FIELDS), p)})"


def replace_memory_sql(p: str) -> str:
    sets = ", ".join(f"{n} = {p}" for n in MEMORY_FIELDS if n not in ("workspace", "id", "store_id", "created_at"))
    return f"UPDATE memories SET {sets} WHERE id = {p} AND workspace = {p} AND store_id = {p} AND version_id = {p}"


def replace_memory_args(row: MemoryRow, expected_version_id: str) -> list[Any]:
    values = [getattr(row, n) for n in MEMORY_FIELDS if n not in ("workspace", "id", "store_id", "created_at")]
    return [*values, row.id, row.workspace, row.store_id, expected_version_id]


REDACT_SET = (
    "content = NULL, content_sha256 = NULL, content_size_bytes = NULL, path = NULL,"
    " redacted_at = {p}, redacted_by = {p}"
)
