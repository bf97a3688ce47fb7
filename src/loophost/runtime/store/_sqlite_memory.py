"""`SQLiteMemoryStorage`: the memory tables on the SQLite store's engine. A memory change and its version are one
write function, so they commit together (in one SAVEPOINT of a group commit)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from . import _memory_sql as q
from ._memory import MemoryRow, MemoryStoreRow, MemoryVersionRow, PathTaken, VersionQuery
from ._records import StoredEvent
from ._sqlite_engine import SQLiteEngine
from ._sqlite_webhooks import write_outbox
from ._webhooks import OutboxEvent

P = "?"


class SQLiteMemoryStorage:
    """See `MemoryStorage`."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def _write(self, sql: str, args: Sequence[Any]) -> int:
        def fn(conn: sqlite3.Connection) -> tuple[int, Sequence[StoredEvent]]:
            return conn.execute(sql, args).rowcount, ()

        return await self._engine.write(fn)

    async def _one(self, sql: str, args: Sequence[Any]) -> tuple[Any, ...] | None:
        def fn(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            found: tuple[Any, ...] | None = conn.execute(sql, args).fetchone()
            return found

        return await self._engine.read(fn)

    async def _all(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        def fn(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(conn.execute(sql, args).fetchall())

        return await self._engine.read(fn)

    # stores --------------------------------------------------------------------------------------------------
    async def put_memory_store(self, row: MemoryStoreRow, *, webhooks: Sequence[OutboxEvent] = ()) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            conn.execute(
                f"INSERT OR REPLACE INTO memory_stores ({q.STORE_COLS}) VALUES (?,?,?,?,?)",
                (row.workspace, row.id, row.created_at, row.archived_at, row.body),
            )
            write_outbox(conn, webhooks)
            return None, ()

        await self._engine.write(fn)

    async def get_memory_store(self, workspace: str, store_id: str) -> MemoryStoreRow | None:
        r = await self._one(
            f"SELECT {q.STORE_COLS} FROM memory_stores WHERE id = ? AND workspace = ?", (store_id, workspace)
        )
        return q.store_row(r) if r else None

    async def list_memory_stores(
        self,
        workspace: str,
        *,
        after: tuple[str, str] | None,
        limit: int,
        include_archived: bool,
        created_gte: str | None,
        created_lte: str | None,
    ) -> list[MemoryStoreRow]:
        sql, args = q.list_stores_sql(
            P,
            workspace,
            after=after,
            limit=limit,
            include_archived=include_archived,
            created_gte=created_gte,
            created_lte=created_lte,
        )
        return [q.store_row(r) for r in await self._all(sql, args)]

    async def delete_memory_store(self, workspace: str, store_id: str, *, webhooks: Sequence[OutboxEvent] = ()) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute("DELETE FROM memory_stores WHERE id = ? AND workspace = ?", (store_id, workspace))
            if cur.rowcount != 1:
                return False, ()
            for table in ("memories", "memory_versions", "memory_attachments"):
                conn.execute(f"DELETE FROM {table} WHERE store_id = ?", (store_id,))
            write_outbox(conn, webhooks)
            return True, ()

        return await self._engine.write(fn)

    # memories ------------------------------------------------------------------------------------------------
    async def get_memory(
        self, workspace: str, store_id: str, memory_id: str, *, with_content: bool
    ) -> MemoryRow | None:
        cols = q.MEMORY_COLS if with_content else q.MEMORY_BASIC_COLS
        r = await self._one(
            f"SELECT {cols} FROM memories WHERE id = ? AND workspace = ? AND store_id = ?",
            (memory_id, workspace, store_id),
        )
        return q.memory_row(r) if r else None

    async def memory_at(self, workspace: str, store_id: str, path: str) -> MemoryRow | None:
        r = await self._one(
            f"SELECT {q.MEMORY_BASIC_COLS} FROM memories WHERE store_id = ? AND path = ? AND workspace = ?",
            (store_id, path, workspace),
        )
        return q.memory_row(r) if r else None

    async def list_memories(
        self,
        workspace: str,
        store_id: str,
        *,
        prefix: str,
        after: str | None,
        at_or_after: str | None,
        limit: int,
        with_content: bool,
    ) -> list[MemoryRow]:
        sql, args = q.list_memories_sql(
            P,
            workspace,
            store_id,
            prefix=prefix,
            after=after,
            at_or_after=at_or_after,
            limit=limit,
            with_content=with_content,
        )
        return [q.memory_row(r) for r in await self._all(sql, args)]

    async def insert_memory(self, row: MemoryRow, version: MemoryVersionRow) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            try:
                conn.execute(q.insert_memory_sql(P), q.memory_values(row))
            except sqlite3.IntegrityError as exc:
                raise PathTaken(row.path) from exc
            conn.execute(q.insert_version_sql(P), q.version_values(version))
            return None, ()

        await self._engine.write(fn)

    async def replace_memory(self, row: MemoryRow, version: MemoryVersionRow, *, expected_version_id: str) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            try:
                cur = conn.execute(q.replace_memory_sql(P), q.replace_memory_args(row, expected_version_id))
            except sqlite3.IntegrityError as exc:
                raise PathTaken(row.path) from exc
            if cur.rowcount != 1:
                return False, ()
            conn.execute(q.insert_version_sql(P), q.version_values(version))
            return True, ()

        return await self._engine.write(fn)

    async def delete_memory(
        self, workspace: str, store_id: str, memory_id: str, version: MemoryVersionRow, *, expected_version_id: str
    ) -> bool:
        def fn(conn: sqlite3.Connection) -> tuple[bool, Sequence[StoredEvent]]:
            cur = conn.execute(
                "DELETE FROM memories WHERE id = ? AND workspace = ? AND store_id = ? AND version_id = ?",
                (memory_id, workspace, store_id, expected_version_id),
            )
            if cur.rowcount != 1:
                return False, ()
            conn.execute(q.insert_version_sql(P), q.version_values(version))
            return True, ()

        return await self._engine.write(fn)

    # versions ------------------------------------------------------------------------------------------------
    async def get_memory_version(
        self, workspace: str, store_id: str, version_id: str, *, with_content: bool
    ) -> MemoryVersionRow | None:
        cols = q.VERSION_COLS if with_content else q.VERSION_BASIC_COLS
        r = await self._one(
            f"SELECT {cols} FROM memory_versions WHERE id = ? AND workspace = ? AND store_id = ?",
            (version_id, workspace, store_id),
        )
        return q.version_row(r) if r else None

    async def list_memory_versions(self, workspace: str, store_id: str, query: VersionQuery) -> list[MemoryVersionRow]:
        sql, args = q.list_versions_sql(P, workspace, store_id, query)
        return [q.version_row(r) for r in await self._all(sql, args)]

    async def redact_memory_version(
        self, workspace: str, store_id: str, version_id: str, *, redacted_at: str, redacted_by: str
    ) -> bool:
        changed = await self._write(
            f"UPDATE memory_versions SET {q.REDACT_SET.format(p=P)} WHERE id = ? AND workspace = ? AND store_id = ?",
            (redacted_at, redacted_by, version_id, workspace, store_id),
        )
        return changed == 1

    # attachments ---------------------------------------------------------------------------------------------
    async def attach_memory_stores(self, workspace: str, session_id: str, store_ids: list[str]) -> None:
        def fn(conn: sqlite3.Connection) -> tuple[None, Sequence[StoredEvent]]:
            conn.executemany(
                "INSERT OR IGNORE INTO memory_attachments (store_id, session_id) VALUES (?, ?)",
                [(s, session_id) for s in store_ids],
            )
            return None, ()

        await self._engine.write(fn)
